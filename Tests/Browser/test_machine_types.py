"""The machine-type page against the API it reads (issue 15 item 3: it read field names the API
does not send, so state versions were missing and a blocker's device showed as "undefined")."""
from selenium.webdriver.common.by import By
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
