"""A real browser (Playwright driving the system Chromium) makes a tiny previz film through
`cinerl ui`: estimate, plan only, approve, watch the takes arrive, retake a scene, choose a
take, download the film. Screenshots of each page go to the test's tmp folder (their paths are
printed), and so do the page-load times: the finished 6-scene run's workbench opened cold (a new
browser context, empty cache) and reloaded, three times each, wall time and the renderer's
main-thread busy time (CDP Performance.getMetrics TaskDuration). Issue 16's bound, 1 s, is
asserted on the medians when the machine is idle enough to judge it.

Heavy: the film plans (spaCy) and shoots through the UI's worker on two shared cores, about two
minutes (make test-heavy)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import CINERL

pytestmark = pytest.mark.heavy

playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
pytest.importorskip("gradio", reason="the workbench needs gradio (pip install 'cinerl[ui]')")
CHROMIUM = os.environ.get("CINERL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no chromium on PATH (apt-get install chromium; or set CINERL_CHROMIUM)", allow_module_level=True
    )

PROMPT = "A fox and a girl walk through a snowy forest to the old mill at dawn."
RUN_SHOWN = "(document.querySelector('#status')?.innerText ?? '').includes('tiny')"
LOADS = 3  # cold loads and reloads of the 6-scene run (medians judged)


def busy_s(cdp) -> float:
    """The renderer main thread's busy time so far (tasks run, in seconds)."""
    return next(
        m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration"
    )


def open_run(browser, url: str) -> tuple[float, float, float, float]:
    """Cold load (a new context: empty cache, a new renderer) and a reload of the same page,
    each until the newest run's status line is on it: (cold s, cold busy s, reload s, reload
    busy s). The reload's busy time is the counter's growth, or its value if the reload got a
    new renderer (the counter starts again)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    b0, t0 = busy_s(cdp), time.perf_counter()
    page.goto(url)
    page.wait_for_function(RUN_SHOWN, polling=16)
    cold, cold_busy = time.perf_counter() - t0, busy_s(cdp) - b0
    b0, t0 = busy_s(cdp), time.perf_counter()
    page.reload()
    page.wait_for_function(RUN_SHOWN, polling=16)
    again, b1 = time.perf_counter() - t0, busy_s(cdp)
    ctx.close()
    return cold, cold_busy, again, b1 - b0 if b1 >= b0 else b1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path):
    port = free_port()
    runs = tmp_path / "runs"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [CINERL, "ui", "--runs", str(runs), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() - t0 < 120, "cinerl ui did not start"
            time.sleep(0.3)
    yield url, runs
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:  # a job still on the worker thread
        proc.kill()
        proc.wait()


def test_make_a_film_through_the_workbench(server, tmp_path):
    url, runs = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    loads = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(240_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        def status_has(text: str) -> None:
            page.wait_for_function(
                "t => (document.querySelector('#status')?.innerText ?? '').includes(t)",
                arg=text,
                timeout=240_000,
            )

        def tab(name: str) -> None:
            page.get_by_role("tab", name=name, exact=True).click()

        t0 = time.monotonic()
        page.goto(url)
        page.wait_for_selector("#prompt textarea")
        loads.append(("first load, no runs", time.monotonic() - t0))
        page.locator("#prompt textarea").fill(PROMPT)
        # six scenes: the page-load figures are for a 6-scene run's workbench (the target)
        for field, value in (("#scenes", "6"), ("#takes", "1"), ("#fps", "4")):
            page.locator(f"{field} input").fill(value)
        page.locator("#size textarea, #size input").first.fill("64x48")
        page.locator("#name textarea, #name input").first.fill("tiny")
        page.locator("#estimate").click()
        page.wait_for_function(
            "(document.querySelector('#new-out')?.innerText ?? '').includes('6 scenes x 1 take')"
        )
        shot("1_new_film")
        page.locator("#plan-only").click()
        status_has("awaiting approval")
        status_has("plan (done)")
        tab("Storyboard")
        page.get_by_role("button", name="Refresh").click()
        # reference stills of the cast and places (an earlier render of the board may still be on the
        # page while the refresh is on its way, so wait for the stills rather than count at once)
        page.wait_for_function("document.querySelectorAll('#board img').length >= 2", timeout=60_000)
        assert "Characters" in page.locator("#board").inner_text()
        # the plan field by field: a character's age and a scene's action, saved into the bible
        age = page.locator("[id^=char-][id$=-age] input").first
        age.fill("33")
        page.locator("#scene-2-action textarea").fill("They cross the frozen stream together.")
        page.locator("#save-fields").click()
        page.wait_for_function("(document.querySelector('#board-out')?.innerText ?? '').includes('saved')")
        shot("2_storyboard")
        page.locator("#approve").click()
        status_has("approve (done)")
        tab("Shooting")
        page.wait_for_function("document.querySelectorAll('#shoot .take').length == 6")
        assert page.locator("#shoot #curve circle").count() == 6  # the reward curve, one dot a take
        shot("3_shooting")
        tab("Scenes")
        page.locator("#scene-no input").fill("1")
        page.locator("#retake-n input").fill("1")
        page.locator("#retake").click()
        status_has("retake (done)")
        page.locator("#show-takes").click()
        page.wait_for_function("document.querySelectorAll('#scene-takes .take').length == 2")
        assert page.locator("#scene-takes video").count() == 2  # both takes playable, side by side
        page.locator("#take-no input").fill("2")
        page.locator("#choose").click()
        status_has("choose (done)")
        page.locator("#show-takes").click()
        page.wait_for_selector('#scene-takes .take.chosen[data-take="2"]')
        shot("4_scenes")
        tab("Film")
        t0 = time.monotonic()
        page.reload()  # the state lives in the server and the store: a reload sees it all
        page.wait_for_selector("#run")
        status_has("tiny")  # the reloaded page opens the newest run, with its state
        loads.append(("reload after the edits, run shown", time.monotonic() - t0))
        tab("Film")
        page.wait_for_selector("#film-player")
        with page.expect_download() as dl:
            page.locator("#dl-film-mp4").click()
        got = Path(dl.value.path()).read_bytes()
        shot("5_film")
        # first visits to the finished 6-scene run (a new context has an empty cache), reloaded
        opened = [open_run(browser, url) for _ in range(LOADS)]
        browser.close()
    plan = json.loads((runs / "tiny" / "story" / "bible.json").read_text())
    assert plan["characters"][0]["age"] == 33  # the field edit was saved, approved and shot
    assert plan["scenes"][1]["action"] == "They cross the frozen stream together."
    film = runs / "tiny" / "film.mp4"
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(film.read_bytes()).hexdigest()
    print("screenshots:", *sorted(str(p) for p in shots.iterdir()))
    load = os.getloadavg()[0]
    for what, seconds in loads:
        print(f"page {what}: {seconds:.2f} s (load average {load:.1f} on {os.cpu_count()} CPUs)")
    cold, cold_busy, again, again_busy = (statistics.median(x) for x in zip(*opened))
    print(
        f"6-scene run's workbench, median of {LOADS}: first load (cold cache) {cold:.2f} s "
        f"(main thread busy {cold_busy:.2f} s), reload {again:.2f} s (busy {again_busy:.2f} s); "
        f"each: {[tuple(round(v, 2) for v in x) for x in opened]}"
    )
    # Issue 16: under 1 s. The machine is shared, so the bound is asserted only when the load
    # average leaves the page a CPU of its own (on a busy host it is printed, not judged).
    if load < (os.cpu_count() or 1) - 0.5:
        assert cold < 1.0 and again < 1.0, opened
    else:
        print(f"page-load bound not asserted: load average {load:.1f} on {os.cpu_count()} CPUs")
