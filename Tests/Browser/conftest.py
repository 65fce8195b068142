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

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("EMUPANEL_BIN", os.path.join(ROOT, ".build", "debug", "emupanel"))
SCREENSHOTS = os.path.join(ROOT, "docs", "screenshots")
TOKEN = "browser-test-token-42"


class Panel:
    """One `emupanel serve` on an ephemeral port with its own data directory."""

    def __init__(self, name, extra_config=None):
        self.name = name
        self.data_dir = tempfile.mkdtemp(prefix=f"emupanel-e2e-{name}-")
        self.log_path = os.path.join(self.data_dir, "serve.log")
        config = {"listen": "127.0.0.1:0", "dataDir": self.data_dir,
                  "publicDir": os.path.join(ROOT, "Public"), "guestsDir": os.path.join(ROOT, "guests")}
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
            return json.load(response)

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


def screenshot(driver, name):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS, f"{name}.png"))
