"""--fresh removes only what the run store lists; it refuses a folder that is not a run; an empty
--out is refused."""

from tests.e2e.helpers import film_frames, run
from tests.faults.runs import make2, one_line_error


def test_fresh_refuses_a_folder_of_user_files(tmp_path):
    out = tmp_path / "mine"
    (out / "story").mkdir(parents=True)
    (out / "story" / "novel.txt").write_text("my novel")
    (out / "references").mkdir()
    (out / "references" / "photo.png").write_bytes(b"x")
    line = one_line_error(run(make2(out, tmp_path / "p.pt", "--fresh")))
    assert "holds no CineRL run" in line and "nothing was deleted" in line
    assert (out / "story" / "novel.txt").read_text() == "my novel"
    assert (out / "references" / "photo.png").exists()


def test_empty_out_is_refused(tmp_path):
    cmd = make2(tmp_path / "x", tmp_path / "p.pt", "--fresh")
    cmd[cmd.index("--out") + 1] = ""
    (tmp_path / "keep.txt").write_text("keep")
    line = one_line_error(run(cmd, cwd=tmp_path))
    assert "--out is empty" in line
    assert (tmp_path / "keep.txt").exists()


def test_fresh_keeps_user_files_in_a_run_folder(copy_of, reference, tmp_path):
    out = copy_of()
    (out / "notes.txt").write_text("mine")
    (out / "scenes" / "my_cut.mp4").write_bytes(b"mine")
    (out / "story" / "ideas.md").write_text("mine")
    proc = run(make2(out, tmp_path / "fresh.pt", "--fresh"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "scenes" / "my_cut.mp4").read_bytes() == b"mine"
    assert (out / "story" / "ideas.md").read_text() == "mine"
    # a fresh run from a fresh policy file is the reference film again
    assert (film_frames(out) == reference[1]).all()
