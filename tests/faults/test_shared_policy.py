"""Two learning runs at once on one shared policy file lose no update: each scene's update is
applied under the file's lock, merged into what the other run wrote."""

import subprocess

from cinerl.training.policy.net import PromptPolicy
from tests.e2e.helpers import env
from tests.faults.runs import make2


def test_two_runs_learning_into_one_policy_file_keep_both_runs_updates(tmp_path):
    policy = tmp_path / "shared.pt"
    procs = [
        subprocess.Popen(
            make2(tmp_path / f"run_{i}", policy, "--seed", str(i)),
            env=env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "Traceback" not in outs[0][1] + outs[1][1]
    shared = PromptPolicy()
    assert shared.load(policy)
    assert shared.version == 4  # 2 scenes x 2 runs: no update lost, whichever run wrote last
