"""Fixtures for the end-to-end tests: real emupanel processes and a headless Chromium."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("EMUPANEL_BIN", os.path.join(ROOT, ".build", "debug", "emupanel"))
# Every run writes its screenshots under the ignored build folder; `make screenshots` points this at
# docs/screenshots to refresh the tracked ones.
SCREENSHOTS = os.environ.get("EMUPANEL_SCREENSHOTS", os.path.join(ROOT, ".build-browser", "screenshots"))
TOKEN = "browser-test-token-42"
# QEMU's discovery probes only qemu-system-riscv64, once per run (its cache is shared and removed at the end).
QEMU_CACHE = tempfile.mkdtemp(prefix="emupanel-e2e-qemu-cache-")


class Panel:
    """One `emupanel serve` on an ephemeral port with its own data directory."""

    def __init__(self, name, extra_config=None):
        self.name = name
        self.data_dir = tempfile.mkdtemp(prefix=f"emupanel-e2e-{name}-")
        self.log_path = os.path.join(self.data_dir, "serve.log")
        config = {"listen": "127.0.0.1:0", "dataDir": self.data_dir,
                  # EMUPANEL_PUBLIC serves another copy of the UI (e.g. an older one, to see a test fail before its fix).
                  "publicDir": os.environ.get("EMUPANEL_PUBLIC", os.path.join(ROOT, "Public")), "guestsDir": os.path.join(ROOT, "guests"),
                  "qemu": {"binaries": ["qemu-system-riscv64"], "cacheDir": QEMU_CACHE}}
        config.update(extra_config or {})
        self.config_path = os.path.join(self.data_dir, "config.json")
        with open(self.config_path, "w") as f:
            import json
            json.dump(config, f)
        self.log = open(self.log_path, "w")
        self._launch()

    def _launch(self):
        self.process = subprocess.Popen(
            [BINARY, "serve", "--config", self.config_path, "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT,
            env={**os.environ, "EMUPANEL_TOKEN": TOKEN})
        self.url = None
        deadline = time.time() + 30
        while time.time() < deadline and self.url is None:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(r"Open (http://\S+?)/#token=", line)
            if match:
                self.url = match.group(1)
        if self.url is None:
            self.stop()
            raise RuntimeError(f"emupanel {self.name} did not start; see {self.log_path}")

    @property
    def login_url(self):
        return f"{self.url}/#token={TOKEN}"

    def api(self, path, method="GET", body=None):
        import json
        headers = {"Authorization": f"Bearer {TOKEN}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return json.loads(body) if body else None

    def guest(self, name, image="timer", memory=None, start=False, machine_type="virt"):
        """Creates a guest through the API (and starts it); returns its record."""
        if memory is None:
            memory = next(i for i in self.api("/images")["items"] if i["id"] == image)["defaultMemoryMiB"]
        guest = self.api("/guests", "POST", {"name": name, "image": image, "machineType": machine_type, "memoryMiB": memory})
        if start:
            guest = self.api(f"/guests/{guest['id']}/start", "POST")
        return guest

    def wait_for_task(self, task, seconds=60):
        """Polls a task until it has finished; returns it."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            current = self.api(f"/tasks/{task['id']}")
            if current["status"] in ("succeeded", "failed", "cancelled"):
                return current
            time.sleep(0.1)
        raise AssertionError(f"task {task['id']} did not finish in {seconds} s")

    def snapshot(self, guest, name, restore=False):
        """Takes (or with `restore`, restores) a snapshot of a guest and waits for the task; returns it."""
        path = f"/guests/{guest['id']}/snapshots" + (f"/{name}/restore" if restore else "")
        task = self.wait_for_task(self.api(path, "POST", None if restore else {"name": name, "description": ""})["task"])
        assert task["status"] == "succeeded", task
        return task

    def remove_guests(self):
        """Stops and deletes every guest (each test starts from an empty list)."""
        for guest in self.api("/guests")["items"]:
            if guest["state"] in ("running", "paused"):
                self.api(f"/guests/{guest['id']}/stop", "POST")
            if guest["state"] != "migrating":
                self.api(f"/guests/{guest['id']}", "DELETE")

    def _terminate(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def restart(self):
        """Stops and starts again with the same data; the URL stays only with a fixed `listen` port."""
        self._terminate()
        self._launch()

    def stop(self):
        self._terminate()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def panel_b():
    p = Panel("b")
    yield p
    p.stop()


@pytest.fixture(scope="session")
def panel(panel_b):
    p = Panel("a", {"peers": [{"name": "b", "url": panel_b.url, "token": TOKEN}]})
    yield p
    p.stop()


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait(driver, seconds=10):
    return WebDriverWait(driver, seconds)


def login(driver, panel):
    """Opens the panel's login URL in a fresh document and waits for the overview."""
    driver.get("about:blank")
    driver.get(panel.login_url)
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
    # Lists remember their search, filters and sort for the tab: each test starts without them.
    driver.execute_script("for (const key of Object.keys(sessionStorage)) if (key.startsWith('emupanel.list.')) sessionStorage.removeItem(key)")


def clear_field(element):
    """Empties a field the way typing does (Selenium's clear() sends no input event)."""
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)


def open_page(driver, panel, page, heading):
    """Goes to `#/page` and waits for its heading."""
    driver.get(f"{panel.url}/#/{page}")
    wait(driver).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), heading))


def confirm(driver, expect=None):
    """Answers the confirmation dialog with its confirm button; returns the dialog's text."""
    dialog = wait(driver).until(EC.visibility_of_element_located((By.ID, "confirm-dialog")))
    text = dialog.text
    if expect:
        assert expect in text, text
    driver.find_element(By.ID, "confirm-ok").click()
    wait(driver).until(EC.invisibility_of_element_located((By.ID, "confirm-dialog")))
    return text


def main_text(driver):
    return driver.find_element(By.TAG_NAME, "main").text


def screenshot(driver, name, toasts=False):
    """Saves the window; notifications of other tests' tasks are dismissed first unless wanted."""
    if not toasts:
        driver.execute_script("for (const toast of document.querySelectorAll('#toasts .toast')) toast.remove()")
    os.makedirs(SCREENSHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS, f"{name}.png"))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(QEMU_CACHE, ignore_errors=True)
