import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# fixtures shared across folders: a real face and a local S3 server; the RAPO starter graph; a
# local Ray cluster
pytest_plugins = ["tests.fixtures.faces", "tests.fixtures.rapo", "tests.fixtures.ray", "tests.faults.runs"]


# `make test` says which browser tests (Playwright on the system Chromium) it ran, or why not
_browser: dict = {"ran": [], "failed": [], "skipped": [], "deselected": 0, "chromium": None}


def _is_browser(nodeid: str) -> bool:
    return "_browser.py" in nodeid.split("::")[0]


def pytest_collectreport(report):
    if _is_browser(report.nodeid) and report.skipped:  # a module-level skip: no playwright, no chromium
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _browser["skipped"].append(str(reason).removeprefix("Skipped: "))


def pytest_deselected(items):
    _browser["deselected"] += sum(_is_browser(i.nodeid) for i in items)


def pytest_runtest_logreport(report):
    if not _is_browser(report.nodeid):
        return
    if report.when == "call":
        _browser["ran" if report.passed else "failed"].append(report.nodeid)
    elif report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _browser["skipped"].append(str(reason).removeprefix("Skipped: "))
    elif report.failed:
        _browser["failed"].append(report.nodeid)


def pytest_collection_modifyitems(items):
    for item in items:
        if _is_browser(item.nodeid) and getattr(item.module, "CHROMIUM", None):
            _browser["chromium"] = item.module.CHROMIUM


def pytest_terminal_summary(terminalreporter):
    b = _browser
    ran, failed = len(b["ran"]), len(b["failed"])
    if ran or failed:
        line = f"browser tests: {ran + failed} ran ({failed} failed; chromium {b['chromium']})"
        line = line.replace("(0 failed; ", "(")
    elif b["skipped"]:
        line = "browser tests: skipped: " + "; ".join(sorted(set(b["skipped"])))
    elif b["deselected"] or "not heavy" in (terminalreporter.config.option.markexpr or ""):
        # under pytest-xdist the workers deselect, so the controller sees only the -m expression
        line = "browser tests: not run (heavy: make test-heavy runs them)"
    else:
        return  # none collected: a run of other folders
    terminalreporter.write_line(line)
