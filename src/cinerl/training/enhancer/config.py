"""The enhancer trainers' Config plumbing: one-line help per field (the CLI's flags are made from
them, apps/cli/train_video.config_command), and the metrics JSONL every trainer writes (TRL's
logs, one row per logging step)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


def arg(default: Any, help: str, **kw: Any) -> Any:
    """A Config field with its one-line help (what `--help` and the docs print)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return dataclasses.field(default=default, metadata={"help": help}, **kw)


def helps(cls) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def metrics_callback(path: Path, extra=None):
    """A transformers TrainerCallback appending every log row (step, loss, rewards, times) to a
    JSONL file; `extra()` adds fields of our own (render and score seconds)."""
    from transformers import TrainerCallback

    class MetricsJSONL(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            row = {"step": state.global_step, "epoch": state.epoch}
            row.update(
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in logs.items()}
            )
            if extra is not None:
                row.update(extra())
            with Path(path).open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, default=float) + "\n")

    return MetricsJSONL()


def read_metrics(path: Path) -> list[dict]:
    p = Path(path)
    return (
        [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        if p.exists()
        else []
    )
