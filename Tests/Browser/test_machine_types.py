"""The machine-type page against the API it reads (issue 15 item 3: it read field names the API
does not send, so state versions were missing and a blocker's device showed as "undefined")."""
import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support import expected_conditions as EC

from conftest import login, open_page, screenshot, wait


def test_machine_type_page_shows_what_the_api_says(panel, browser):
    login(browser, panel)
    for name in ("virt-1.0", "sandbox-hostrng"):
        detail = panel.api(f"/machine-types/{name}")
        open_page(browser, panel, f"machine-types/{name}", name)
        devices = "//section[h2[text()='Devices']]//tbody/tr"
        rows = wait(browser).until(lambda d: d.find_elements(By.XPATH, devices))
        assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == [d["id"] for d in detail["devices"]]
        for row, device in zip(rows, detail["devices"]):
            cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            assert cells[0] == device["id"] and cells[1] == device["driver"]
            if device["migration"] == "vmstate":
                state = device["state"]
                assert state["name"] in cells[2]
                assert cells[3] == str(state["versionId"]) and cells[4] == str(state["minimumVersionId"]), (device, cells)
            elif device["migration"] == "unmigratable":
                assert device["blocker"] in cells[2], (device, cells)
                assert cells[3] == cells[4] == "—"
            else:
                assert "no state" in cells[2]
        blockers = browser.find_elements(By.XPATH, "//section[h2[text()='Migration blockers']]//li")
        assert len(blockers) == len(detail["blockers"])
        for item, blocker in zip(blockers, detail["blockers"]):
            assert item.text == f"{blocker['deviceId']} ({blocker['driver']}): {blocker['reason']}", item.text
        assert browser.find_element(By.ID, "tier-reason").text == detail["tierReason"]
        page = browser.find_element(By.TAG_NAME, "main").text
        assert "undefined" not in page and "null" not in page
        screenshot(browser, f"machine-type-{name}")
    # A type with a blocker says which device and why, where the tier is explained.
    assert any(d["migration"] == "unmigratable" for d in panel.api("/machine-types/sandbox-hostrng")["devices"])
    wait(browser).until(EC.presence_of_element_located((By.ID, "blockers")))


def test_backend_switch_shows_qemus_machine_types_with_tiers(panel, browser):
    """Issue 12: QEMU's machine types beside the built-in core's, their tiers computed from what
    QEMU reports, and a QEMU guest created from the form."""
    if not shutil.which("qemu-system-riscv64"):
        pytest.skip("qemu-system-riscv64 is not installed")
    login(browser, panel)
    open_page(browser, panel, "machine-types", "Machine types")
    browser.find_element(By.ID, "backend-qemu").click()
    expected = [t["name"] for t in panel.api("/machine-types?backend=qemu")["items"]]
    # Read afresh each time: a live refresh may redraw the table meanwhile.
    rows = "//table[@id='qemu-machine-types']/tbody/tr"
    wait(browser).until(lambda d: [r.get_attribute("data-name") for r in d.find_elements(By.XPATH, rows)] == expected)
    virt = f"{rows}[@data-name='virt']"
    wait(browser).until(lambda d: d.find_element(By.XPATH, f"{virt}//span[contains(@class,'badge')]").text == "unversioned")
    assert "qemu-system-riscv64" in browser.find_element(By.XPATH, virt).text
    assert "qemu-system-riscv64" in browser.find_element(By.ID, "qemu-binaries").text
    screenshot(browser, "machine-types-qemu")
    # The type's own page: QEMU's words and its dump.
    browser.find_element(By.XPATH, f"{virt}//a[text()='virt']").click()
    wait(browser).until(EC.presence_of_element_located((By.ID, "tier-reason")))
    detail = panel.api("/machine-types/virt?backend=qemu&binary=qemu-system-riscv64")
    assert browser.find_element(By.ID, "tier-reason").text == detail["tierReason"]
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "undefined" not in page and "null" not in page
    # The switch is remembered in this tab; back to the built-in core.
    open_page(browser, panel, "machine-types", "Machine types")
    shown = wait(browser).until(EC.presence_of_element_located((By.ID, "qemu-machine-types")))
    browser.find_element(By.ID, "backend-builtin").click()
    wait(browser).until(EC.staleness_of(shown))
    wait(browser).until(lambda d: d.find_elements(By.LINK_TEXT, "virt-1.0"))

    # The create form offers QEMU: its machine types, the images that boot there, no icount.
    open_page(browser, panel, "guests", "Guests")
    Select(browser.find_element(By.ID, "guest-backend")).select_by_value("qemu")
    wait(browser).until(lambda d: Select(d.find_element(By.ID, "guest-machine")).first_selected_option.get_attribute("value") == "virt")
    assert not browser.find_element(By.ID, "guest-icount").is_enabled()
    browser.find_element(By.ID, "guest-name").send_keys("qemu-echo")
    Select(browser.find_element(By.ID, "guest-image")).select_by_value("uart-echo")
    browser.find_element(By.CSS_SELECTOR, "#create-guest button[type=submit]").click()
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "guest-runs-on"), "QEMU (qemu-system-riscv64)"))
    wait(browser).until(lambda d: "unversioned" in d.find_element(By.ID, "guest-tier").text)
    guest = next(g for g in panel.api("/guests")["items"] if g["name"] == "qemu-echo")
    assert guest["backend"] == "qemu" and guest["binary"] == "qemu-system-riscv64"
    panel.api(f"/guests/{guest['id']}", method="DELETE")


def test_qemu_compatibility_matrix_shows_this_hosts_and_the_peers_qemus(panel, browser):
    """Issue 12 item 7: machine type × QEMU version, this host's QEMU and the peer's, with the
    cells the API computes."""
    if not shutil.which("qemu-system-riscv64"):
        pytest.skip("qemu-system-riscv64 is not installed")
    login(browser, panel)
    open_page(browser, panel, "compatibility", "Compatibility")
    browser.find_element(By.ID, "backend-qemu").click()
    matrix = panel.api("/compatibility?backend=qemu")
    table = "//table[@data-arch='riscv64']"
    wait(browser, 120).until(EC.presence_of_element_located((By.XPATH, table)))
    headers = [th.text for th in browser.find_elements(By.XPATH, f"{table}/thead//th")][1:]
    assert headers == [c["release"] for c in matrix["items"][0]["cells"]]
    assert any(h.startswith("b: qemu-system-riscv64") for h in headers), headers
    for row in matrix["items"]:
        shown = browser.find_element(By.XPATH, f"{table}/tbody/tr[@data-name='{row['machineType']}']")
        assert row["tier"] in shown.find_element(By.TAG_NAME, "th").text
        cells = [td.text for td in shown.find_elements(By.TAG_NAME, "td")]
        for text, value in zip(cells, row["cells"]):
            if value["status"] == "same":
                assert "this QEMU" in text
            elif value["status"] == "blocked":
                assert "not migratable" in text and value["reason"] in text
            elif value["status"] == "compatible":
                assert "moves both ways" in text
    virt = [c["status"] for c in next(r for r in matrix["items"] if r["machineType"] == "virt")["cells"]]
    assert virt == ["same", "compatible"], virt
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "undefined" not in page and "null" not in page
    screenshot(browser, "compatibility-qemu")
    browser.find_element(By.ID, "backend-builtin").click()
    # Read in the page: the switch redraws the page, so an element found a moment ago may be gone.
    heads = "const t = document.querySelector('table.matrix thead'); return t ? t.textContent : ''"
    wait(browser).until(lambda d: "release" in d.execute_script(heads))
