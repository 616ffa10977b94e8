"""A damaged run folder heals on resume (one log line per file) and gives the uninterrupted film;
a store that cannot be read gets one line; a SIGKILL mid-run resumes to the same film."""

import subprocess
import time

from tests.e2e.helpers import env, film_frames, run
from tests.faults.runs import make2, one_line_error


def test_deleted_and_truncated_files_are_remade(copy_of, reference, tmp_path):
    out = copy_of()
    s0, s1 = out / "scenes" / "scene_00", out / "scenes" / "scene_01"
    (s0 / "attempt_00.mp4").unlink()
    data = (s1 / "attempt_01.mp4").read_bytes()
    (s1 / "attempt_01.mp4").write_bytes(data[: len(data) // 3])
    for png in s0.glob("*_last.png"):
        png.unlink()  # the continuity frame the next scene starts from
    snap = out / "policy" / "after_scene_00.pt"
    snap.write_bytes(snap.read_bytes()[:100])
    (out / "film.mp4").unlink()
    proc = run(make2(out, tmp_path / "p.pt"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr
    assert "healed scene 1 take 1" in proc.stderr and "healed scene 2 take 2" in proc.stderr
    assert "healed policy/after_scene_00.pt" in proc.stderr
    assert (film_frames(out) == reference[1]).all()


def test_garbage_store_is_one_line(copy_of, tmp_path):
    out = copy_of()
    (out / "state.db").write_bytes(b"this is not sqlite" * 100)
    for extra in ("state.db-wal", "state.db-shm"):
        (out / extra).unlink(missing_ok=True)
    line = one_line_error(run(make2(out, tmp_path / "p.pt")))
    assert "state.db is damaged" in line and "mv " in line


def test_hand_edited_bible_is_named(copy_of, tmp_path):
    out = copy_of()
    bible = out / "story" / "bible.json"
    bible.write_text(bible.read_text().replace('"title"', '"title" ', 1))
    line = one_line_error(run(make2(out, tmp_path / "p.pt")))
    assert "bible.json was edited" in line and "--fresh" in line


def test_sigkill_mid_scene_resumes_to_the_same_film(reference, tmp_path):
    out, policy = tmp_path / "run", tmp_path / "p.pt"
    proc = subprocess.Popen(
        make2(out, policy),
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = out / "scenes" / "scene_01" / "attempt_00.mp4"
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    done = run(make2(out, policy))
    assert done.returncode == 0, done.stderr
    assert "policy v0 -> v2" in done.stdout  # the run's start version, also when resumed
    assert (film_frames(out) == reference[1]).all()
