"""Parts of the UI given made-up answers, for cases a real run does not produce on demand: a
migration that missed its downtime limit, a pre-flight whose checks fail alike both ways."""
from conftest import login


def render(browser, module, function, *arguments):
    """Calls an exported function of a UI module in the page and returns the text it renders."""
    return browser.execute_async_script("""
        const [module, name, args, done] = [arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]];
        import(module).then((m) => {
            const out = [m[name](...args)].flat();
            const box = document.createElement('div');
            for (const node of out) if (node) box.append(node);
            document.body.append(box);
            done({ text: box.innerText, html: box.innerHTML });
            box.remove();
        }).catch((e) => done({ error: String(e) }));""", module, function, list(arguments))


def test_a_missed_downtime_limit_is_marked_beside_the_limit(panel, browser):
    """Issue 15 item 8: a 1,999 ms downtime against a 300 ms limit showed as plain success."""
    login(browser, panel)
    detail = {"status": "completed", "downtime": 1999, "downtime-limit": 300, "max-bandwidth": 40 * 1048576,
              "total-time": 5000, "ram": {"mbps": 301.2, "transferred": 1 << 28, "remaining": 0, "total": 1 << 30}}
    missed = render(browser, "/js/pages/migrate-figures.js", "migrationFigures", detail, "succeeded")
    assert "1999 ms over the 300 ms limit" in missed["text"], missed
    assert "over-limit" in missed["html"]
    assert "301.2 Mbit/s (cap 40.0 MiB/s = 335.5 Mbit/s)" in missed["text"]
    within = render(browser, "/js/pages/migrate-figures.js", "migrationFigures", {**detail, "downtime": 120}, "succeeded")
    assert "120 ms (within the 300 ms limit)" in within["text"], within
    summary = render(browser, "/js/pages/migrate-figures.js", "migrationSummary", detail)
    assert "downtime 1999 ms (limit 300 ms)" in summary["text"] and "over the limit" in summary["text"], summary
    # An older panel's figures, without the limit: the one asked for is used.
    older = {k: v for k, v in detail.items() if k != "downtime-limit"}
    assert "over the 300 ms limit" in render(browser, "/js/pages/migrate-figures.js", "migrationFigures", older, "succeeded", 300)["text"]


def test_a_reason_shared_by_two_checks_is_said_once(panel, browser):
    login(browser, panel)
    problem = "Section \"serial\" Version 2 is newer than 1"
    answer = {"go": False,
              "checks": [{"name": "machine type", "ok": True, "detail": "known"},
                         {"name": "static check 1.2 → 1.1", "ok": False, "detail": problem},
                         {"name": "static check 1.1 → 1.2", "ok": False, "detail": problem}],
              "reasons": [f"static check 1.2 → 1.1: {problem}", f"static check 1.1 → 1.2: {problem}"]}
    shown = render(browser, "/js/pages/migrate.js", "verdictView", answer)
    assert shown["text"].count("is newer than") == 1, shown
    assert "static check 1.2 → 1.1 and static check 1.1 → 1.2" in shown["text"]
    assert "No go" in shown["text"] and "1 check passed" in shown["text"]


def test_overview_shows_the_hosts_warnings_and_reads_its_limits(panel, browser):
    """Issue 15 item 11: GET /host `warnings` (what start-up recovery found) are shown, and the
    memory range comes from `limits`; while a panel sends neither, nothing is made up."""
    login(browser, panel)
    host = {"warnings": ["guest g-1a2b3c4d has no directory", "orphan file guests/x/y.qevm"],
            "limits": {"memoryMiB": {"min": 16, "max": 2048}, "maxGuests": None, "maxTotalMemoryMiB": 4096, "maxSnapshotBytes": None}}
    card = render(browser, "/js/pages/overview.js", "warningsCard", host)
    assert "Warnings (2)" in card["text"] and "orphan file guests/x/y.qevm" in card["text"], card
    assert render(browser, "/js/pages/overview.js", "warningsCard", {})["text"] == ""
    limits = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/js/host-info.js').then((m) => done([
            m.memoryLimits(arguments[0], { minimumMemoryMiB: 64 }),
            m.memoryLimits({}, { minimumMemoryMiB: 1 })]));""", host)
    assert limits == [{"min": 64, "max": 2048}, {"min": 16, "max": None}]
