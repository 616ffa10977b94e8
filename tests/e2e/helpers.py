"""Running the real `cinerl` command at a small size."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from cinerl.core.media import read_mp4

CINERL = str(Path(sys.executable).with_name("cinerl"))
PROMPT = (
    "A retired lighthouse keeper and her estranged son sail from the stormy coast to the old "
    "harbour town to save the drowning lantern festival."
)
SMALL = ["--scenes", "3", "--attempts", "2", "--max-attempts", "2", "--size", "96x64", "--fps", "6"]


def env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def make_cmd(out: Path, policy: Path, *extra: str, prompt: str = PROMPT) -> list[str]:
    return [CINERL, "make", prompt, "--out", str(out), "--policy", str(policy), *SMALL, *extra]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("env", env())
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, **kw)


def film_frames(out: Path) -> np.ndarray:
    frames, _ = read_mp4(out / "film.mp4")
    return frames
