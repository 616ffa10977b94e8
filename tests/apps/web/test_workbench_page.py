"""What the first page load of the workbench is made of (issue 16's 1 s page load): the
component kinds the browser fetches a script for, the events that fire inside the load, and the
frontend files compressed before the first visit. No browser: the served /config and the asset
route (the browser test times the page itself)."""

from __future__ import annotations

import gzip

import pytest

pytest.importorskip("gradio", reason="the workbench needs gradio (pip install 'cinerl[ui]')")
from starlette.testclient import TestClient  # noqa: E402

from cinerl.apps.web.app import create_app, warm  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("runs"))


def test_first_page_fires_one_quiet_event_and_fetches_few_kinds(app):
    cfg = TestClient(app).get("/config").json()
    kinds = {c["type"] for c in cfg["components"]}
    # each kind is its own chunk of script: no Markdown (its parser and Prism), none of the heavy
    # ones (a dataframe, gallery, code editor, plot or video player each costs a first load)
    assert kinds == {
        "button", "checkbox", "column", "dropdown", "form", "html",
        "number", "row", "tabitem", "tabs", "textbox", "timer",
    }  # fmt: skip
    by_id = {c["id"]: c for c in cfg["components"]}
    (timer,) = (c for c in cfg["components"] if c["type"] == "timer")
    assert timer["props"]["active"] is False  # ticks only while a job runs
    run = next(c["id"] for c in cfg["components"] if c["props"].get("elem_id") == "run")
    triggers = [(by_id.get(t[0], {}).get("type"), t[1], d) for d in cfg["dependencies"] for t in d["targets"]]
    on_load = [d for kind, event, d in triggers if event == "load"]
    assert len(on_load) == 1  # the run list and the newest run, in one event; no render on load
    assert on_load[0]["queue"] is False and on_load[0]["show_progress"] == "hidden"
    # a `change` on the run would load every tab a second time when the load event sets it
    assert not [d for d in cfg["dependencies"] for t in d["targets"] if t == [run, "change"]]
    (tick,) = (d for kind, event, d in triggers if event == "tick")
    assert tick["queue"] is False and tick["show_progress"] == "hidden"
    # the storyboard's fields are drawn when their tab opens
    render = next(d for d in cfg["dependencies"] if d.get("render_id") is not None)
    assert ("tabitem", "select") in {(by_id[t[0]]["type"], t[1]) for t in render["targets"]}


def test_frontend_files_are_compressed_before_the_first_visit(app):
    assets = app.state.assets
    assert assets is not None and not any(k.endswith(".js") for k in assets.cache)
    warm(app)
    scripts = [k for k in assets.cache if k.startswith("assets/") and k.endswith(".js")]
    assert len(scripts) > 100  # the whole frontend up to the size limit, not just the page's
    rel = max(scripts, key=lambda k: len(assets.cache[k][1]) if len(assets.cache[k][1]) < 200_000 else 0)
    plain = assets.cache[rel][1]
    client = TestClient(app)
    got = client.get(f"/{rel}", headers={"accept-encoding": "br"})
    assert got.headers["content-encoding"] == "br" and "immutable" in got.headers["cache-control"]
    assert got.content == plain  # (the test client decodes it)
    raw = client.get(f"/{rel}", headers={"accept-encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert gzip.decompress(assets.cache[rel][2]["gzip"]) == plain  # made on demand, then kept
