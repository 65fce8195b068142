"""The UI under the panel's Content-Security-Policy (issue 11 item 18): every page renders and
nothing it does is blocked — no inline script, inline style, eval or foreign source."""
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import TOKEN

# Installed before any page script runs (DevTools injection is not subject to the page's policy).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`));
"""


def test_every_page_runs_under_the_content_security_policy(panel, browser):
    # A tab of its own, so whatever an earlier test left behind does not matter.
    original = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    guest = None
    try:
        image = next(item for item in panel.api("/images")["items"] if item["available"])
        machine = next(t for t in panel.api("/machine-types")["items"] if t.get("alias"))["name"]
        guest = panel.api("/guests", "POST", {"name": "csp-check", "image": image["id"], "machineType": machine,
                                             "memoryMiB": image["defaultMemoryMiB"]})
        browser.get(panel.login_url)
        WebDriverWait(browser, 10).until(EC.text_to_be_present_in_element((By.ID, "release"), "."))
        seen = []
        for page in ("#/", "#/machine-types", f"#/machine-types/{machine}", "#/compatibility", "#/guests",
                     f"#/guests/{guest['id']}", "#/tasks"):
            # Reloaded, so each page is a new document watched from its start (only the fragment would
            # change otherwise); a reload also keeps the old document out of the back/forward cache.
            browser.get(panel.url + "/" + page)
            browser.refresh()
            WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.TAG_NAME, "h1"))
            violations = browser.execute_script("return window.__violations")
            assert violations is not None, f"the recorder is missing on {page}"
            seen += violations
        assert seen == [], "the policy blocked: " + "; ".join(seen)
        # The policy is in force (a planted inline script is reported), so the check above means something.
        browser.execute_script("const s = document.createElement('script'); s.textContent = '1'; document.body.append(s);")
        WebDriverWait(browser, 5).until(lambda d: d.execute_script("return window.__violations.length") > 0)
    finally:
        browser.close()
        browser.switch_to.window(original)
        if guest:
            request = urllib.request.Request(f"{panel.url}/api/v1/guests/{guest['id']}", method="DELETE",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
            urllib.request.urlopen(request, timeout=10).close()
