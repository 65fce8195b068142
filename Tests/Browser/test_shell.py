"""The UI shell in a real browser: login, navigation, live updates, phone width."""
import socket
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import TOKEN, Panel, screenshot


def wait(driver, seconds=10):
    return WebDriverWait(driver, seconds)


def test_login_with_a_wrong_token_shows_an_error_then_the_right_one_works(panel, browser):
    browser.delete_all_cookies()
    browser.get(panel.url + "/")
    token = wait(browser).until(EC.visibility_of_element_located((By.ID, "token")))
    assert not browser.find_element(By.ID, "nav").is_displayed()
    screenshot(browser, "login")
    token.send_keys("definitely-wrong")
    token.send_keys(Keys.ENTER)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "login-error"), "not valid"))
    token.clear()
    token.send_keys(TOKEN + Keys.ENTER)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
    assert browser.find_element(By.ID, "nav").is_displayed()


def test_login_url_logs_in_and_hides_the_token(panel, browser):
    browser.delete_all_cookies()
    browser.get(panel.login_url)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
    assert "token=" not in browser.current_url
    assert browser.find_element(By.ID, "release").text == panel.api("/host")["release"]
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
    screenshot(browser, "overview")
    # A reload keeps the session (cookie) and its CSRF token.
    browser.refresh()
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))


def test_navigation_reaches_every_page_by_keyboard(panel, browser):
    browser.get(panel.login_url)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
    for page, heading in (("machine-types", "Machine types"), ("guests", "Guests"), ("tasks", "Tasks")):
        link = browser.find_element(By.CSS_SELECTOR, f'nav a[data-page="{page}"]')
        link.send_keys(Keys.ENTER)
        wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), heading))
        assert link.get_attribute("aria-current") == "page"


def test_phone_width_keeps_everything_reachable(panel, browser):
    browser.get(panel.login_url)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
    browser.set_window_size(390, 844)
    try:
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"page is {width}px wide at phone width"
        screenshot(browser, "overview-phone")
    finally:
        browser.set_window_size(1280, 900)


def test_logout_returns_to_login(panel, browser):
    browser.get(panel.login_url)
    wait(browser).until(EC.element_to_be_clickable((By.ID, "logout"))).click()
    wait(browser).until(EC.visibility_of_element_located((By.ID, "token")))


def test_live_updates_survive_a_panel_restart(browser):
    # A fixed port, so the page's origin (and its EventSource) outlive the restart.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    panel = Panel("restart", {"listen": f"127.0.0.1:{port}"})
    try:
        image = next(item for item in panel.api("/images")["items"] if item["available"])
        machine = next(t for t in panel.api("/machine-types")["items"] if t.get("alias"))["name"]

        def create(name):
            panel.api("/guests", "POST", {"name": name, "image": image["id"], "machineType": machine,
                                          "memoryMiB": image["defaultMemoryMiB"]})

        browser.get(panel.login_url)
        wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
        browser.get(panel.url + "/#/guests")
        wait(browser).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
        # Enough events that the browser's cursor is ahead of the next run's first numbers.
        for n in range(3):
            create(f"before-{n}")
        wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "before-2"))

        panel.restart()
        # Sessions survive a restart (issue 15 item 9): live updates come back without a login.
        create("after-restart")
        wait(browser, 45).until(EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "after-restart"))
        assert not browser.find_elements(By.ID, "token"), "the restart asked for a login"
        assert browser.find_element(By.TAG_NAME, "h1").text == "Guests"
    finally:
        panel.stop()
