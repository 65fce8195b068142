"""The serial console is xterm.js (Debian's node-xterm, bundled at build time): colours and cursor
addressing render as in a desktop terminal, the grid follows its frame when the window resizes,
paste and copy work, and a phone types through a field that opens its soft keyboard."""
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import login, open_page, screenshot, wait


def console_text(driver):
    return driver.execute_script("const c = document.getElementById('console'); return c && c.readText ? c.readText() : ''")


def echo_guest(panel, browser, name):
    panel.remove_guests()
    guest = panel.guest(name, image="uart-echo", start=True)
    login(browser, panel)
    open_page(browser, panel, f"guests/{guest['id']}", name)
    wait(browser, 30).until(lambda d: "ready" in console_text(d))
    return guest


def linux_guest_at_shell(panel, browser, name):
    """A started Linux guest on its page, its shell's prompt on the console (skipped when the
    guest is not built)."""
    images = {i["id"]: i for i in panel.api("/images")["items"]}
    if not (images.get("linux") and images["linux"]["available"]):
        import pytest
        pytest.skip("the Linux guest is not built (make linux)")
    panel.remove_guests()
    guest = panel.guest(name, image="linux", start=True)
    login(browser, panel)
    open_page(browser, panel, f"guests/{guest['id']}", name)
    wait(browser, 90).until(lambda d: console_text(d).rstrip().endswith("#"))
    return guest


def console_screenshot(browser, name):
    browser.execute_script("document.getElementById('console').scrollIntoView({ block: 'center' })")
    screenshot(browser, name)


def test_colours_and_cursor_addressing_render_as_in_a_terminal(panel, browser):
    guest = echo_guest(panel, browser, "colours")
    assert browser.find_elements(By.CSS_SELECTOR, "#console .xterm canvas"), "xterm.js draws the console"
    # The echo guest sends back what it gets: clear the screen, put X at row 5 column 10, then red text.
    panel.api(f"/guests/{guest['id']}/console", "POST", {"data": "\x1b[2J\x1b[5;10HX\x1b[31mred\x1b[0m"})
    wait(browser, 20).until(lambda d: any(line[9:13] == "Xred" for line in console_text(d).split("\n")))
    colour = lambda column: browser.execute_script(f"return document.getElementById('console').readForeground(4, {column})")
    # Row 5 of the screen (index 4) holds it: X in the default colour, then red (SGR 31 is palette 1).
    assert [colour(c) for c in (9, 10, 11, 12)] == [-1, 1, 1, 1]
    screenshot(browser, "guest-console-xterm")
    panel.api(f"/guests/{guest['id']}/stop", "POST")


def test_the_grid_follows_its_frame_and_paste_and_copy_work(panel, browser):
    guest = echo_guest(panel, browser, "sizes")
    size = lambda d: d.find_element(By.ID, "console-size").text
    wait(browser, 10).until(lambda d: "×" in size(d))
    wide = int(size(browser).split("×")[0])
    try:
        browser.set_window_size(800, 900)
        wait(browser, 10).until(lambda d: "×" in size(d) and int(size(d).split("×")[0]) < wide)
    finally:
        browser.set_window_size(1280, 900)
    wait(browser, 10).until(lambda d: int(size(d).split("×")[0]) == wide)
    # A paste (Ctrl+V, the browser's menu) lands on xterm.js's field and goes to the guest.
    browser.execute_script("""
        const data = new DataTransfer();
        data.setData('text/plain', 'pasted-words');
        document.getElementById('console-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));""")
    wait(browser, 20).until(lambda d: "pasted-words" in console_text(d))
    # Copy: a selection made with the mouse goes to the clipboard with the Copy button.
    browser.execute_cdp_cmd("Browser.grantPermissions", {"origin": panel.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    rows = browser.find_element(By.CSS_SELECTOR, "#console .xterm-screen")
    ActionChains(browser).move_to_element_with_offset(rows, -rows.size["width"] // 2 + 4, -rows.size["height"] // 2 + 4) \
        .click_and_hold().move_by_offset(rows.size["width"] - 8, 40).release().perform()
    browser.find_element(By.XPATH, "//div[@class='terminal-tools']/button[text()='Copy']").click()
    copied = browser.execute_async_script("const done = arguments[0]; navigator.clipboard.readText().then(done, (e) => done('failed: ' + e))")
    assert "echo: ready" in copied, copied
    panel.api(f"/guests/{guest['id']}/stop", "POST")


def test_a_phone_types_through_a_field_that_opens_the_soft_keyboard(panel, browser):
    browser.set_window_size(390, 844)
    try:
        guest = echo_guest(panel, browser, "phone-typing")
        field = browser.find_element(By.ID, "console-phone")
        assert field.is_displayed() and field.tag_name == "input"
        browser.find_element(By.ID, "console").click()
        assert browser.switch_to.active_element == field
        browser.execute_script("""
            const field = document.getElementById('console-phone');
            field.value = 'soft keys';
            field.dispatchEvent(new InputEvent('input', { inputType: 'insertText', data: 'soft keys', bubbles: true }));""")
        wait(browser, 20).until(lambda d: "soft keys" in console_text(d))
        screenshot(browser, "guest-console-phone-field")
        panel.api(f"/guests/{guest['id']}/stop", "POST")
    finally:
        browser.set_window_size(1280, 900)


def test_vi_edits_a_file_full_screen(panel, browser):
    """Issue 14 item 5: the guest's `vi` takes the whole screen (the text, "~" past its end, a
    status line), is typed into with the browser's keyboard (Escape, Enter, arrows), and writes
    the file."""
    guest = linux_guest_at_shell(panel, browser, "editor")
    panel.api(f"/guests/{guest['id']}/console", "POST", {"data": "vi /notes\r"})
    status = lambda d: next((r for r in reversed(screen_rows(d)) if r.strip()), "")
    wait(browser, 30).until(lambda d: "new file" in status(d) and screen_rows(d)[1].startswith("~"))
    browser.find_element(By.ID, "console").click()
    keys = lambda *k: ActionChains(browser).send_keys(*k).perform()
    keys("i")
    wait(browser, 10).until(lambda d: "-- INSERT --" in status(d))
    keys("first line", Keys.ENTER, "second", Keys.ESCAPE)
    wait(browser, 20).until(lambda d: screen_rows(d)[:2] == ["first line", "second"] and "INSERT" not in status(d))
    # Up an arrow, to the line's start, delete a character: the screen is redrawn in place.
    keys(Keys.ARROW_UP, "0x")
    wait(browser, 20).until(lambda d: screen_rows(d)[:3] == ["irst line", "second", "~"])
    console_screenshot(browser, "guest-console-vi")
    keys(":wq", Keys.ENTER)
    wait(browser, 20).until(lambda d: console_text(d).rstrip().endswith("#"))
    panel.api(f"/guests/{guest['id']}/console", "POST", {"data": "cat /notes\r"})
    wait(browser, 20).until(lambda d: "irst line\nsecond\n#" in console_text(d).replace("\r", ""))
    panel.api(f"/guests/{guest['id']}/stop", "POST")


def screen_rows(driver):
    return driver.execute_script("const c = document.getElementById('console'); return c && c.readScreen ? c.readScreen() : []")


def test_a_full_screen_program_redraws_in_place(panel, browser):
    """Issue 14 item 5: `top` in the Linux guest takes the whole screen with cursor addressing and
    redraws it every second; its title stays on the first row, and 'q' gives the shell back."""
    guest = linux_guest_at_shell(panel, browser, "full-screen")
    panel.api(f"/guests/{guest['id']}/console", "POST", {"data": "top\r"})
    title = "top - emupanel Linux guest"
    wait(browser, 30).until(lambda d: title in (screen_rows(d) or [""])[0])

    def frame(d):
        rows = screen_rows(d)
        line = next((r for r in rows if "frame " in r), "")
        return int(line.split("frame ")[1].split()[0]) if line else 0

    first = frame(browser)
    wait(browser, 30).until(lambda d: frame(d) >= first + 2)
    rows = screen_rows(browser)
    assert title in rows[0] and sum(title in r for r in rows) == 1, rows
    # PID 1, our init, is listed (running: it is the one reading /proc).
    assert any(r.split()[:1] == ["1"] and r.split()[2:3] == ["init"] for r in rows), rows
    console_screenshot(browser, "guest-console-top")
    panel.api(f"/guests/{guest['id']}/console", "POST", {"data": "q"})
    wait(browser, 30).until(lambda d: not any(title in r for r in screen_rows(d)) and "#" in "".join(screen_rows(d)))
    panel.api(f"/guests/{guest['id']}/stop", "POST")
