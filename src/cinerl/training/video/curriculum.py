"""The gated length curriculum (`--curriculum 33,49,65,97`), for the DPO trainer and online GRPO.

Frame counts are 4k+1 (Wan's VAE), so the recommendation's 32/48/64/96 frames become 33/49/65/97.
Each stage trains `stage_steps` steps at its length (cached latents cropped in time, exact for Wan's
causal VAE). At the end of a stage a gate measures the model at the current length and at the next
one; every metric (higher is better) must stay within `tolerance` of its value at the current
length for the curriculum to advance. Otherwise the stage trains another round, up to `retries`
rounds, and then the curriculum stops and says which metrics fell. Every decision, with its
figures, goes to `curriculum.json` and the training report.

The state machine:

    training(stage i, round r) --stage end--> gate(i -> i+1)
        all within tolerance      -> advance: training(i+1, 0)
        else, r < retries         -> retry:   training(i, r+1)
        else                      -> stop     (status "stopped", the reason recorded)
    training(last stage) --stage end--> done  (status "finished")

A gate is any callable `gate(frames_now, frames_next, context) -> (metrics_now, metrics_next)`,
two dicts of metric -> value; a gate that measures nothing at both lengths stops the curriculum.
Two are built: the reward gate (`evaluate.reward_gate`, `--gate rewards`, the default when the
model folder has a VAE) renders the fixed evaluation clips with the current LoRA at both lengths
and scores them with the length-sensitive reward components (warp consistency, flow smoothness,
identity lock, loop break, seam continuity, subject consistency: those that apply); the DPO gate
(`dpo_gate`, `--gate dpo`) measures the implicit accuracy and reward margin on fixed pairs, fixed
noise and timesteps, at both lengths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FILE = "curriculum.json"


@dataclass
class Curriculum:
    stages: list[int]
    stage_steps: int
    tolerance: float = 0.05
    retries: int = 2
    index: int = 0
    round: int = 0
    stage_end: int = 0
    status: str = "training"  # training | finished | stopped
    reason: str = ""
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if not self.stage_end:
            self.stage_end = self.stage_steps

    # ---- the machine --------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self.stages[self.index]

    @property
    def finished(self) -> bool:
        return self.status != "training"

    def stage_done(self, step: int) -> bool:
        return self.status == "training" and step >= self.stage_end

    def judge(self, now: dict[str, float], nxt: dict[str, float]) -> list[str]:
        """The metrics that fell by more than the tolerance at the next length."""
        return [k for k in now if k in nxt and nxt[k] < now[k] - self.tolerance]

    def apply(self, step: int, now: dict | None, nxt: dict | None) -> dict:
        """One transition at a stage end; returns the decision recorded."""
        entry = {"step": step, "stage": self.index, "frames": self.frames, "round": self.round}
        if self.index == len(self.stages) - 1:
            self.status = "finished"
            entry.update(decision="done", reason="the last stage is trained")
        else:
            fell = self.judge(now or {}, nxt or {})
            entry.update(next_frames=self.stages[self.index + 1], metrics=now, next_metrics=nxt, fell=fell)
            if not any(k in (nxt or {}) for k in (now or {})):
                # nothing measured at both lengths: advancing would be a guess
                self.status = "stopped"
                self.reason = (
                    f"stopped at {self.frames} frames: the gate measured no metric at both "
                    f"{self.frames} and {self.stages[self.index + 1]} frames"
                )
                entry.update(decision="stop", reason=self.reason)
            elif not fell:
                entry.update(decision="advance", reason="every gate metric within tolerance")
                self.index += 1
                self.round = 0
            elif self.round < self.retries:
                entry.update(
                    decision="retry",
                    reason=f"fell at {self.stages[self.index + 1]} frames: {', '.join(fell)}",
                )
                self.round += 1
            else:
                self.status = "stopped"
                self.reason = (
                    f"stopped at {self.frames} frames after {self.round + 1} rounds: at "
                    f"{self.stages[self.index + 1]} frames {', '.join(fell)} fell by more than "
                    f"{self.tolerance}"
                )
                entry.update(decision="stop", reason=self.reason)
        self.stage_end = step + self.stage_steps
        self.history.append(entry)
        return entry

    def decide(self, step: int, gate, context=None) -> dict:
        """Run the gate (unless this is the last stage) and apply its verdict."""
        if self.index == len(self.stages) - 1:
            return self.apply(step, None, None)
        gate = gate or dpo_gate
        now, nxt = gate(self.frames, self.stages[self.index + 1], context)
        return self.apply(step, now, nxt)

    def budget_spent(self, step: int) -> None:
        if self.status == "training":
            self.status = "stopped"
            self.reason = f"the step budget ran out at step {step}, stage {self.index} ({self.frames} frames)"
            self.history.append({"step": step, "decision": "stop", "reason": self.reason})

    # ---- processes, saving, resuming -----------------------------------------------------
    def sync(self, accel, decision: dict | None) -> None:
        """Every process takes the main process's decision (the gate runs there only)."""
        if accel is None or accel.num_processes == 1:
            return
        from accelerate.utils import broadcast_object_list

        box = [self.state() if accel.is_main_process else None]
        broadcast_object_list(box, from_process=0)
        self.load(box[0])

    def state(self) -> dict:
        return {
            "stages": self.stages,
            "stage_steps": self.stage_steps,
            "tolerance": self.tolerance,
            "retries": self.retries,
            "index": self.index,
            "round": self.round,
            "stage_end": self.stage_end,
            "status": self.status,
            "reason": self.reason,
            "history": self.history,
        }

    def load(self, state: dict) -> None:
        for k in ("index", "round", "stage_end", "status", "reason", "history"):
            setattr(self, k, state[k])

    @classmethod
    def restore(
        cls, state: dict | None, stages, stage_steps, tolerance, retries, step: int = 0
    ) -> "Curriculum":
        c = cls(list(stages), int(stage_steps), float(tolerance), int(retries))
        if state:
            if list(state["stages"]) != c.stages:
                from cinerl.core.errors import UserError

                raise UserError(f"the checkpoint's curriculum is {state['stages']}, not {c.stages}")
            c.load(state)
        return c

    def write(self, out: Path) -> Path:
        from cinerl.core.media import atomic_write_text

        return atomic_write_text(Path(out) / FILE, json.dumps(self.state(), indent=2))


def dpo_gate(frames_now: int, frames_next: int, trainer) -> tuple[dict, dict]:
    """The DPO trainer's gate: implicit accuracy and reward margin (per pair, averaged) of the
    current LoRA on the first pairs, fixed noise and timesteps, at both lengths."""
    return trainer.evaluate(frames_now), trainer.evaluate(frames_next)
