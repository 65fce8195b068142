"""One guest's page: its tier, confirmations that name what is lost, live resource graphs, the
console on a phone, the pre-flight verdict, the task log viewer and notifications."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from conftest import confirm, login, open_page, screenshot, wait


def console_text(driver):
    return driver.execute_script("const c = document.getElementById('console'); return c && c.readText ? c.readText() : ''")


def test_guest_page_shows_the_tier_of_its_machine_type(panel, browser):
    """Issue 15 item 4: the guest page never showed its machine type's tier."""
    panel.remove_guests()
    guest = panel.guest("tiered", image="uart-echo", machine_type="virt-1.0")
    login(browser, panel)
    open_page(browser, panel, f"guests/{guest['id']}", "tiered")
    tier = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#guest-tier .badge")))
    assert tier.text == panel.api("/machine-types/virt-1.0")["tier"] == "versioned"
    assert "forward and backward" in browser.find_element(By.ID, "guest-tier").text


def test_stop_reset_restore_and_delete_ask_first_naming_what_is_lost(panel, browser):
    """Issue 15 item 6: Restore, Stop, Reset and Delete acted at once."""
    panel.remove_guests()
    guest = panel.guest("careful", image="uart-echo", start=True)
    panel.snapshot(guest, "base")
    login(browser, panel)
    open_page(browser, panel, f"guests/{guest['id']}", "careful")
    state = lambda: panel.api(f"/guests/{guest['id']}")["state"]

    # Stop, cancelled: nothing happens.
    wait(browser).until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'button[aria-label="Stop careful"]'))).click()
    dialog = wait(browser).until(EC.visibility_of_element_located((By.ID, "confirm-dialog")))
    assert 'since snapshot "base"' in dialog.text
    screenshot(browser, "confirm-stop")
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-cancel", "the safe choice has the focus"
    browser.find_element(By.ID, "confirm-cancel").click()
    wait(browser).until(EC.invisibility_of_element_located((By.ID, "confirm-dialog")))
    assert state() == "running"

    # Reset names the same loss; confirmed, it resets.
    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Reset careful"]').click()
    confirm(browser, expect='since snapshot "base"')

    # Restore of a running guest names what is lost.
    wait(browser).until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'button[aria-label="Restore snapshot base"]'))).click()
    text = confirm(browser, expect="Restore snapshot base?")
    assert "state since snapshot" in text
    wait(browser, 60).until(EC.text_to_be_present_in_element((By.ID, "snapshot-progress"), "Restore finished"))

    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Stop careful"]').click()
    confirm(browser)
    wait(browser, 30).until(lambda d: state() == "stopped")

    # Delete names the snapshots that go with it.
    wait(browser).until(EC.element_to_be_clickable((By.ID, "guest-delete"))).click()
    text = confirm(browser, expect="1 snapshot: base")
    wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Guests"))
    assert not [g for g in panel.api("/guests")["items"] if g["name"] == "careful"]
    assert text


def test_resource_graphs_update_live(panel, browser):
    panel.remove_guests()
    guest = panel.guest("graphed", image="memory-pattern", memory=64, start=True)
    login(browser, panel)
    open_page(browser, panel, f"guests/{guest['id']}", "graphed")
    graphs = ["guest-graph-ips", "guest-graph-dirty", "guest-graph-cpu", "guest-graph-rss"]
    count = lambda d, graph: int(d.find_element(By.ID, graph).get_attribute("data-samples"))
    wait(browser, 20).until(lambda d: all(count(d, g) >= 2 for g in graphs))
    before = count(browser, "guest-graph-ips")
    # New samples arrive on the event stream, without reloading.
    wait(browser, 20).until(lambda d: count(d, "guest-graph-ips") >= before + 2)
    label = browser.find_element(By.ID, "guest-graph-dirty").get_attribute("aria-label")
    assert label.startswith("Dirty pages/s:") and "/s now" in label
    assert "MiB" in browser.find_element(By.ID, "guest-graph-rss").text
    assert browser.find_element(By.CSS_SELECTOR, "#guest-graph-ips polyline").get_attribute("points").count(",") >= 2
    wait(browser, 30).until(lambda d: count(d, "guest-graph-ips") >= 10)  # enough history to look like a graph
    browser.execute_script("document.getElementById('guest-graphs-h').scrollIntoView()")
    screenshot(browser, "guest-graphs")

    # The host page shows the same for the whole panel.
    open_page(browser, panel, "host", "Host")
    wait(browser, 20).until(lambda d: all(count(d, g.replace("guest", "host")) >= 2 for g in graphs))
    screenshot(browser, "host")
    panel.api(f"/guests/{guest['id']}/stop", "POST")


def test_a_qemu_guest_graphs_what_qemu_reports(panel, browser):
    """A QEMU guest's page draws its QEMU process's CPU and memory and says why instructions and
    dirty pages are missing, rather than a flat 0/s (issue 12)."""
    import shutil
    import pytest
    if not shutil.which("qemu-system-riscv64"):
        pytest.skip("qemu-system-riscv64 is not installed")
    panel.remove_guests()
    guest = panel.api("/guests", "POST", {"name": "on-qemu", "image": "uboot", "machineType": "virt",
                                          "memoryMiB": 128, "backend": "qemu"})
    panel.api(f"/guests/{guest['id']}/start", "POST")
    login(browser, panel)
    open_page(browser, panel, f"guests/{guest['id']}", "on-qemu")
    count = lambda d, graph: int(d.find_element(By.ID, graph).get_attribute("data-samples"))
    wait(browser, 30).until(lambda d: all(count(d, g) >= 2 for g in ["guest-graph-cpu", "guest-graph-rss"]))
    assert not browser.find_elements(By.ID, "guest-graph-ips") and not browser.find_elements(By.ID, "guest-graph-dirty")
    assert "QEMU does not report retired instructions" in browser.find_element(By.CSS_SELECTOR, "[aria-labelledby=guest-graphs-h]").text
    assert "MiB" in browser.find_element(By.ID, "guest-graph-rss").text
    panel.api(f"/guests/{guest['id']}/stop", "POST")


def test_phone_console_opens_a_soft_keyboard(panel, browser):
    """Issue 15 item 9: on a phone the console could not open a soft keyboard (a <pre> takes no text
    input). Tapping it focuses a text field; what a soft keyboard types there (input events, no key
    events) reaches the guest."""
    panel.remove_guests()
    guest = panel.guest("phone-echo", image="uart-echo", start=True)
    login(browser, panel)
    browser.set_window_size(390, 844)
    try:
        open_page(browser, panel, f"guests/{guest['id']}", "phone-echo")
        wait(browser, 30).until(lambda d: "ready" in console_text(d))
        browser.find_element(By.ID, "console").click()
        focused = browser.switch_to.active_element
        assert focused.tag_name in ("textarea", "input") or focused.get_attribute("contenteditable") == "true"
        # What a soft keyboard does: the text lands in the field as an input event.
        browser.execute_script("""
            const field = document.activeElement;
            field.value = 'tapped';
            field.dispatchEvent(new InputEvent('input', { inputType: 'insertText', data: 'tapped', bubbles: true }));""")
        wait(browser, 30).until(lambda d: "tapped" in console_text(d))
        screenshot(browser, "guest-console-phone")
    finally:
        browser.set_window_size(1280, 900)


def test_preflight_says_each_reason_once(panel, panel_b, browser):
    """Issue 15 item 9: pre-flight reasons were listed up to four times (each failed check, then the
    same as a reason)."""
    panel.remove_guests()
    panel_b.remove_guests()
    guest = panel.guest("taken-name", image="uart-echo", start=True)
    panel_b.guest("taken-name", image="uart-echo")
    login(browser, panel)
    open_page(browser, panel, f"guests/{guest['id']}", "taken-name")
    Select(browser.find_element(By.ID, "migrate-peer")).select_by_value("b")
    browser.find_element(By.ID, "migrate-check").click()
    verdict = browser.find_element(By.ID, "migrate-verdict")
    wait(browser, 30).until(lambda d: "No go" in verdict.text)
    assert verdict.text.count("exists here") == 1, verdict.text
    assert not browser.find_element(By.ID, "migrate-start").is_enabled()
    panel_b.remove_guests()


def test_task_log_follows_live_and_a_finished_task_is_notified(panel, panel_b, browser):
    """The task log viewer shows a task's lines as they come; a finished task shows a notification."""
    panel.remove_guests()
    panel_b.remove_guests()
    guest = panel.guest("slow-mover", image="memory-pattern", memory=64, start=True)
    login(browser, panel)
    # 1 MiB/s: the transfer takes long enough to watch it and cancel it.
    started = panel.api(f"/guests/{guest['id']}/migrate", "POST", {"target": {"peer": "b"}, "maxBandwidth": 1 << 20})["task"]
    open_page(browser, panel, f"tasks/{started['id']}", "Task: migrate")
    log = browser.find_element(By.ID, "task-log")
    wait(browser, 30).until(lambda d: "copying RAM while the guest runs" in log.text)
    lines = len(log.find_elements(By.TAG_NAME, "li"))
    browser.find_element(By.ID, "task-cancel").click()
    confirm(browser, expect="keeps running here")
    # New lines arrive without a reload…
    wait(browser, 30).until(lambda d: "cancel requested" in log.text)
    wait(browser, 30).until(lambda d: "migrate cancelled" in log.text)
    assert len(log.find_elements(By.TAG_NAME, "li")) > lines
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "task-status"), "cancelled"))
    # …and the finished task is notified, with a way to its log.
    toast = wait(browser, 30).until(EC.visibility_of_element_located((By.CSS_SELECTOR, f'#toasts .toast[data-task="{started["id"]}"]')))
    assert "Migration of slow-mover cancelled" in toast.text
    assert toast.find_element(By.LINK_TEXT, "View log").get_attribute("href").endswith(f"#/tasks/{started['id']}")
    assert panel.api(f"/guests/{guest['id']}")["state"] == "running"
    browser.execute_script("document.getElementById('task-facts-h').scrollIntoView()")
    screenshot(browser, "task-log", toasts=True)
    panel.api(f"/guests/{guest['id']}/stop", "POST")
