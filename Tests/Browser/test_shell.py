"""The UI shell in a real browser: login, navigation, live updates, phone width, the back/forward
cache, focus after navigation, dark mode, keyboard shortcuts."""
import socket
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from conftest import TOKEN, Panel, login, open_page, screenshot, wait


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
    # A reload keeps the session (cookie) and its CSRF token.
    browser.refresh()
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))


def test_navigation_reaches_every_page_by_keyboard(panel, browser):
    browser.get(panel.login_url)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
    for page, heading in (("machine-types", "Machine types"), ("guests", "Guests"), ("tasks", "Tasks"), ("host", "Host")):
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


def test_pages_in_the_back_forward_cache_hold_no_connection(panel, browser):
    """Issue 15 item 1: pages kept in the back/forward cache held their event streams open, so after
    a few navigations away and back the browser's six connections were used up and pages stayed
    blank for up to a minute."""
    panel.remove_guests()
    guest = panel.guest("bfcache", image="uart-echo", start=True)
    login(browser, panel)
    browser.get(f"{panel.url}/?visit=guest#/guests/{guest['id']}")
    wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "bfcache"))
    for visit in range(10):
        started = time.monotonic()
        # A new document each time (the query differs); the guest page goes into the cache.
        browser.get(f"{panel.url}/?visit={visit}#/tasks")
        wait(browser, 10).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Tasks"))
        wait(browser, 10).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
        assert time.monotonic() - started < 10
        browser.back()
        wait(browser, 10).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "bfcache"))
        wait(browser, 10).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
    # The page restored from the cache follows events again.
    assert "running" in browser.find_element(By.TAG_NAME, "h1").text
    panel.api(f"/guests/{guest['id']}/pause", "POST")
    wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "paused"))
    panel.api(f"/guests/{guest['id']}/stop", "POST")


def test_navigation_draws_no_focus_frame_around_the_page(panel, browser):
    """Issue 15 item 9: after each navigation the focus went to <main>, which drew a focus frame
    around the whole page. The heading takes it now, without a frame."""
    login(browser, panel)
    for page, heading in (("guests", "Guests"), ("tasks", "Tasks"), ("machine-types", "Machine types")):
        browser.find_element(By.CSS_SELECTOR, f'nav a[data-page="{page}"]').send_keys(Keys.ENTER)
        wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), heading))
        wait(browser).until(lambda d: d.execute_script("return document.activeElement.tagName") == "H1")
        focused = browser.execute_script(
            "const e = document.activeElement; const s = getComputedStyle(e);"
            "return [e.tagName, s.outlineStyle, s.outlineWidth]")
        assert focused[0] == "H1" and (focused[1] == "none" or focused[2] == "0px"), focused


def test_dark_mode_follows_the_system_setting(panel, browser):
    login(browser, panel)

    def colours():
        return browser.execute_script(
            "const b = getComputedStyle(document.body), c = document.querySelector('.card');"
            "return [b.backgroundColor, b.color, getComputedStyle(c).backgroundColor]")

    def luminance(css):
        r, g, b = [int(x) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    try:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        background, text, card = colours()
        assert luminance(background) < 0.2 and luminance(card) < 0.25 and luminance(text) > 0.7, (background, text, card)
        screenshot(browser, "overview-dark")
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        background, text, card = colours()
        assert luminance(background) > 0.8 and luminance(text) < 0.3, (background, text)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_keyboard_shortcuts_and_their_help(panel, browser):
    login(browser, panel)
    body = browser.find_element(By.TAG_NAME, "body")
    ActionChains(browser).send_keys("?").perform()
    help_dialog = wait(browser).until(EC.visibility_of_element_located((By.ID, "help")))
    for keys in ("g", "t", "/", "?"):
        assert keys in help_dialog.text
    assert "Go to Tasks" in help_dialog.text
    screenshot(browser, "shortcuts")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    wait(browser).until(EC.invisibility_of_element_located((By.ID, "help")))
    ActionChains(browser).send_keys("g").send_keys("t").perform()
    wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Tasks"))
    ActionChains(browser).send_keys("g").send_keys("g").perform()
    wait(browser).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Guests"))
    ActionChains(browser).send_keys("/").perform()
    assert browser.switch_to.active_element.get_attribute("id") == "guests-search"
    # Typed into a field, the same keys are text, not shortcuts.
    ActionChains(browser).send_keys("g").send_keys("t").perform()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Guests"
    assert browser.find_element(By.ID, "guests-search").get_attribute("value") == "gt"
    browser.find_element(By.ID, "guests-search").clear()
    assert body is not None


def test_two_panels_on_one_machine_keep_their_own_sessions(panel, panel_b, browser):
    """Issue 15 item 5: both panels named their cookie alike, so logging in to one logged the
    browser out of the other. The UI never reads the cookie, whatever its name."""
    login(browser, panel)
    login(browser, panel_b)
    for each in (panel, panel_b):
        open_page(browser, each, "tasks", "Tasks")
        assert not browser.find_elements(By.ID, "token")
