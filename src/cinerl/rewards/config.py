"""How a reward component says what it needs: the reason it gives when a model setting is not
configured, and how many components score at once.

The settings themselves are the `rewards` group (`core.settings.RewardSettings`): model paths
and URLs, the device, the group weights. Nothing is downloaded. Offline defaults ship inside
packages (EfficientNet-Lite0 weights, dlib's face models, the BRISQUE regressor) and are found by
path; everything else is read from a local path or URL given there.
"""

from __future__ import annotations

from cinerl.core.settings import RewardSettings, env_names

EXTRA_HINT = "install the reward models with: pip install 'cinerl[rewards]'"


def missing(name: str) -> str:
    """The reason a component gives when the rewards setting `name` is not configured."""
    info = RewardSettings.model_fields.get(name)
    what = info.description if info is not None and info.description else name
    return f"not configured: set rewards.{name} ({env_names('rewards.' + name)[-1]}): {what}"


def scoring_workers(config: RewardSettings) -> int:
    """Threads that score components at once (config.workers; 0 means 1).

    One at a time is the default (benchmarks/rewards.py, 121 frames at 1280x704): on a 16-core
    H100 host 8 workers took 2.7 s against 0.77 s, because the per-frame threads inside the
    components already fill the cores; on the 2-core dev box 2 workers gained 1.2-1.4x when the
    machine was quiet and lost 6 % under load."""
    return max(1, int(config.workers or 1))
