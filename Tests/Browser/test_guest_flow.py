"""The whole mission in a real browser: create a U-Boot guest, use its console, snapshot,
restore, and migrate it to a second emupanel."""
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import screenshot


def wait(driver, seconds=30):
    return WebDriverWait(driver, seconds)


def console_text(driver):
    return driver.find_element(By.ID, "console").text


def test_create_run_snapshot_restore_migrate(panel, panel_b, browser):
    browser.set_window_size(1280, 1000)
    browser.get(panel.login_url)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))

    # Machine types and the compatibility matrix.
    browser.get(panel.url + "/#/machine-types")
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "span.badge.versioned")))
    screenshot(browser, "machine-types")
    browser.find_element(By.LINK_TEXT, "virt-1.0").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "virt-1.0"))
    screenshot(browser, "machine-type")
    browser.get(panel.url + "/#/compatibility")
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.matrix")))
    screenshot(browser, "compatibility")

    # Create a guest; the form refuses a bad name inline first.
    browser.get(panel.url + "/#/guests")
    name = wait(browser).until(EC.visibility_of_element_located((By.ID, "guest-name")))
    name.send_keys("bad name!")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "create-error"), "1–40"))
    assert name.get_attribute("aria-invalid") == "true"
    name.clear()
    name.send_keys("uboot-e2e")
    Select(browser.find_element(By.ID, "guest-image")).select_by_value("uboot")
    screenshot(browser, "guests")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "uboot-e2e"))

    # Start it and use the console.
    wait(browser).until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'button[aria-label="Start uboot-e2e"]'))).click()
    wait(browser, 60).until(lambda d: "=> " in console_text(d))
    terminal = browser.find_element(By.ID, "console")
    terminal.click()
    terminal.send_keys("version" + Keys.ENTER)
    wait(browser, 30).until(lambda d: "U-Boot 2023" in console_text(d))
    screenshot(browser, "guest-console")

    # Snapshot, then restore.
    browser.find_element(By.ID, "snapshot-name").send_keys("at-prompt")
    browser.find_element(By.ID, "snapshot-description").send_keys("U-Boot waiting at its prompt")
    browser.find_element(By.XPATH, "//button[text()='Take snapshot']").click()
    wait(browser, 60).until(EC.presence_of_element_located((By.CSS_SELECTOR, 'button[aria-label="Restore snapshot at-prompt"]')))
    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Restore snapshot at-prompt"]').click()
    wait(browser, 60).until(EC.text_to_be_present_in_element((By.ID, "snapshot-progress"), "Restore finished"))
    terminal = browser.find_element(By.ID, "console")
    terminal.click()
    terminal.send_keys("version" + Keys.ENTER)
    time.sleep(1)
    screenshot(browser, "guest-snapshots")

    # Migrate to the second panel: the verdict comes first, then the button enables.
    Select(browser.find_element(By.ID, "migrate-peer")).select_by_value("b")
    start = browser.find_element(By.ID, "migrate-start")
    assert not start.is_enabled()
    browser.find_element(By.ID, "migrate-check").click()
    wait(browser, 30).until(EC.text_to_be_present_in_element((By.ID, "migrate-verdict"), "Go"))
    wait(browser).until(EC.element_to_be_clickable((By.ID, "migrate-start"))).click()
    wait(browser, 120).until(lambda d: [g for g in panel_b.api("/guests")["items"] if g["name"] == "uboot-e2e" and g["state"] == "running"])
    wait(browser, 30).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "migrated"))
    browser.execute_script("document.getElementById('migrate-progress').scrollIntoView({block: 'center'})")
    screenshot(browser, "guest-migrated")

    # Tasks show what happened.
    browser.get(panel.url + "/#/tasks")
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "span.status.succeeded")))
    screenshot(browser, "tasks")

    # It runs on the second host, and answers there.
    browser.get(panel_b.login_url)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
    guest = [g for g in panel_b.api("/guests")["items"] if g["name"] == "uboot-e2e"][0]
    browser.get(panel_b.url + f"/#/guests/{guest['id']}")
    terminal = wait(browser).until(EC.presence_of_element_located((By.ID, "console")))
    terminal.click()
    terminal.send_keys("version" + Keys.ENTER)
    wait(browser, 30).until(lambda d: "U-Boot 2023" in console_text(d))
    screenshot(browser, "guest-on-second-host")
