"""One run per folder: a second `cinerl make` on the same --out is refused while the first runs; a
lock left by a killed process is taken over with a notice."""

import subprocess
import time

from tests.e2e.helpers import env
from tests.faults.runs import make2, one_line_error
from tests.e2e.helpers import run


def test_second_run_on_one_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(
        make2(out, tmp_path / "p.pt"),
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = out / ".cinerl.lock"
    deadline = time.time() + 60
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert lock.exists()
    line = one_line_error(run(make2(out, tmp_path / "p.pt")))
    assert f"a run is in progress in {out} (pid {first.pid})" in line
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert not lock.exists()  # released on exit


def test_stale_lock_is_taken_over(copy_of, tmp_path):
    out = copy_of()
    (out / ".cinerl.lock").write_text("999999 elsewhere\n")
    proc = run(make2(out, tmp_path / "p.pt"))
    assert proc.returncode == 0, proc.stderr
    assert "took over the stale lock" in proc.stderr and "999999" in proc.stderr
    assert not (out / ".cinerl.lock").exists()
