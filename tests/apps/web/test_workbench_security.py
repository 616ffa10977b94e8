"""The workbench's guards, without a browser: files only from inside the runs folder (404
otherwise), no other host without credentials, every request checked when credentials are set."""

from __future__ import annotations

import base64

import pytest

from cinerl.apps.web.files import resolve_in, run_dir
from cinerl.core.errors import UserError

pytest.importorskip("gradio", reason="the workbench needs gradio (pip install 'cinerl[ui]')")


def test_resolve_in_keeps_requests_inside(tmp_path):
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "film.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no")
    (runs / "a" / "link").symlink_to(tmp_path / "secret.txt")
    assert resolve_in(runs, "a/film.mp4") == (runs / "a" / "film.mp4").resolve()
    for bad in ("../secret.txt", "a/../../secret.txt", "/etc/passwd", "a/link", "a/missing.mp4", "", "a"):
        assert resolve_in(runs, bad) is None, bad
    with pytest.raises(UserError, match="a run name is"):
        run_dir(runs, "../x")


def test_host_needs_auth_and_auth_is_checked(tmp_path):
    from fastapi.testclient import TestClient

    from cinerl.apps.web.app import check_host, create_app

    with pytest.raises(UserError, match="--host 0.0.0.0 would let other machines start films"):
        check_host("0.0.0.0", None)
    with pytest.raises(UserError, match="--auth takes USER:PASSWORD"):
        check_host("0.0.0.0", "justuser")
    assert check_host("0.0.0.0", "ann:s3cret") == ("ann", "s3cret")
    assert check_host("127.0.0.1", None) is None

    runs = tmp_path / "runs"
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "film.srt").write_text("1\n")
    (tmp_path / "outside.txt").write_text("secret")
    client = TestClient(create_app(runs))
    assert client.get("/runs/r1/film.srt").text == "1\n"
    for path in (
        "/runs/../outside.txt",
        "/runs/r1/..%2F..%2Foutside.txt",
        "/runs/%2Fetc%2Fpasswd",
        "/runs/r1/nope",
    ):
        assert client.get(path).status_code == 404, path
    # Gradio's frontend from memory (apps/web/assets.py): hashed names cached for good, compressed
    page = client.get("/").text
    script = page.split('src="./assets/', 1)[1].split('"', 1)[0]
    got = client.get(f"/assets/{script}", headers={"Accept-Encoding": "br, gzip"})
    assert got.status_code == 200 and "immutable" in got.headers["cache-control"]
    assert got.headers["content-encoding"] in ("br", "gzip") and got.text  # the client decodes it
    for path in ("/assets/../../routes.py", "/assets/..%2F..%2Froutes.py", "/static/nope.js"):
        assert client.get(path).status_code == 404, path
    locked = TestClient(create_app(runs, ("ann", "s3cret")))
    assert locked.get(f"/assets/{script}").status_code == 401  # behind the login too
    assert locked.get("/runs/r1/film.srt").status_code == 401
    assert locked.get("/").status_code == 401  # the UI too, not only the files
    good = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}
    assert locked.get("/runs/r1/film.srt", headers=good).text == "1\n"
    bad = {"Authorization": "Basic " + base64.b64encode(b"ann:wrong").decode()}
    assert locked.get("/runs/r1/film.srt", headers=bad).status_code == 401
