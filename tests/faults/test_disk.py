"""A full disk ends in one line naming the folder and the resume gives the uninterrupted film;
stale temp files of the run are removed on start."""

import resource
import signal

from tests.e2e.helpers import film_frames, run
from tests.faults.runs import make2, one_line_error


def small_disk(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_full_disk_is_one_line_and_resumes(reference, tmp_path):
    out, policy = tmp_path / "run", tmp_path / "p.pt"
    full = run(make2(out, policy), preexec_fn=small_disk(60_000))
    line = one_line_error(full)
    assert "the disk is full writing to" in line and str(out) in line
    (out / ".film.k3j2h1.tmp.mp4").write_bytes(b"half a film")  # as a SIGKILL in stitch leaves
    done = run(make2(out, policy))
    assert done.returncode == 0, done.stderr
    assert "stale temp file" in done.stderr
    assert not list(out.glob(".*.tmp*"))
    assert (film_frames(out) == reference[1]).all()
