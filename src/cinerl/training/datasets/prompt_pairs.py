"""RAPO++'s stage 3 data: what SSPO chains and `cinerl make` runs learned, as training pairs for
a prompt enhancer.

- SFT (`sft.jsonl`): {"prompt": simple prompt, "completion": the prompt that scored best, ...};
- DPO (`dpo.jsonl`): {"prompt": simple prompt, "chosen": better prompt, "rejected": worse prompt,
  ...} for every pair whose rewards differ by at least `min_margin`.

The key names are TRL's prompt-completion and preference formats (SFTTrainer, DPOTrainer), so the
enhancer's trainer reads the files as they are; the extra fields (rewards, source) carry the
evidence. An SSPO chain's simple prompt is the prompt it started from; a film scene's is the scene's
action and time of day, the text the policy's composition starts from.

The prompt enhancer's pairs (`write_enhancer_pairs`, `cinerl train pairs --kind prompts`) give
the simple prompt the bible's facts too (`enhancer_brief`: the action, who is in it with their
looks, the place with its palette, and the shot's mode), since a detailed prompt can only name
colours the model was told; the enhancer trainers (training/enhancer/) read these rows, and the
starter set shipped in `data/enhancer_sft.jsonl` (`compose_starter`, tools/enhancer/) is the
offline composer's prompt for planned RAPO starter captions, so SFT runs on a fresh machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
from cinerl.core.schema import Scene, StoryBible
from cinerl.core.store import read_report
from cinerl.planning.agents import Mode, offline_prompt
from cinerl.planning.scene_prompts import prompt_mode
from cinerl.prompting.composer import character_sentence, location_sentence
from cinerl.training.sspo.loop import CHAIN_NAME, LOG_NAME, read_log

SCHEMA_VERSION = 1
MIN_MARGIN = 0.02


class SFTRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    completion: str = Field(min_length=1)
    reward: float
    baseline_reward: float | None = Field(None, description="the simple prompt's own reward (SSPO)")
    origin: Literal["sspo", "make"]
    source: str

    @model_validator(mode="after")
    def _check(self) -> "SFTRecord":
        if not math.isfinite(self.reward):
            raise ValueError("reward must be finite")
        if self.prompt.strip() == self.completion.strip():
            raise ValueError("completion must differ from the prompt")
        return self


class DPORecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)
    chosen_reward: float
    rejected_reward: float
    margin: float = Field(gt=0)
    origin: Literal["sspo", "make"]
    source: str

    @model_validator(mode="after")
    def _check(self) -> "DPORecord":
        if self.chosen == self.rejected:
            raise ValueError("chosen and rejected must differ")
        if not self.chosen_reward > self.rejected_reward:
            raise ValueError("chosen_reward must be above rejected_reward")
        if abs(self.margin - (self.chosen_reward - self.rejected_reward)) > 1e-6:
            raise ValueError("margin must equal chosen_reward - rejected_reward")
        return self


class ExportSummary(BaseModel):
    sft: str
    dpo: str
    sft_records: int
    dpo_records: int
    chains: list[str]
    runs: list[str]
    min_margin: float


def _dpo(prompt: str, hi: tuple[str, float], lo: tuple[str, float], origin: str, source: str) -> DPORecord:
    return DPORecord(
        prompt=prompt,
        chosen=hi[0],
        rejected=lo[0],
        chosen_reward=hi[1],
        rejected_reward=lo[1],
        margin=round(hi[1] - lo[1], 6),
        origin=origin,
        source=source,
    )


def from_chain(folder: Path, min_margin: float) -> tuple[list[SFTRecord], list[DPORecord]]:
    """One SSPO chain: its best prompt for SFT; best against each clearly worse one for DPO."""
    chain = json.loads((folder / CHAIN_NAME).read_text(encoding="utf-8"))
    rows = read_log(folder / LOG_NAME)
    if not rows:
        return [], []
    simple = chain["config"]["prompt"]
    best = max(rows, key=lambda r: (r.reward, -r.iteration))
    base = next((r.reward for r in rows if r.prompt == simple), None)
    src = str(folder)
    sft = []
    if best.prompt.strip() != simple.strip():
        sft.append(
            SFTRecord(
                prompt=simple,
                completion=best.prompt,
                reward=best.reward,
                baseline_reward=base,
                origin="sspo",
                source=f"{src}#iter{best.iteration}",
            )
        )
    dpo = []
    seen = set()
    for r in rows:
        if r.prompt != best.prompt and r.prompt not in seen and best.reward - r.reward >= min_margin:
            seen.add(r.prompt)
            dpo.append(
                _dpo(
                    simple,
                    (best.prompt, best.reward),
                    (r.prompt, r.reward),
                    "sspo",
                    f"{src}#iter{best.iteration}>iter{r.iteration}",
                )
            )
    return sft, dpo


def scene_brief(scene: Scene) -> str:
    """The simple prompt of a film scene: the text the policy's composition starts from."""
    return f"{scene.action.rstrip('.')}, {scene.time_of_day}."


def from_run(folder: Path, min_margin: float) -> tuple[list[SFTRecord], list[DPORecord]]:
    """One film: each scene's chosen take for SFT; chosen against clearly worse takes for DPO."""
    report = read_report(folder)
    bible_scenes = {s.index: s for s in report.bible.scenes}
    sft, dpo = [], []
    for sc in report.scenes:
        chosen = sc.chosen_attempt
        if chosen is None or sc.scene not in bible_scenes:
            continue
        simple = scene_brief(bible_scenes[sc.scene])
        src = f"{folder}#scene{sc.scene}"
        hi = (chosen.prompt, chosen.reward.total)
        sft.append(
            SFTRecord(
                prompt=simple,
                completion=hi[0],
                reward=hi[1],
                origin="make",
                source=f"{src}/attempt{chosen.attempt}",
            )
        )
        seen = set()
        for a in sc.attempts:
            lo = (a.prompt, a.reward.total)
            if lo[0] != hi[0] and lo[0] not in seen and hi[1] - lo[1] >= min_margin:
                seen.add(lo[0])
                dpo.append(_dpo(simple, hi, lo, "make", f"{src}/attempt{chosen.attempt}>attempt{a.attempt}"))
    return sft, dpo


def find_sources(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(SSPO chain folders, make run folders) at or below each path."""
    chains: list[Path] = []
    runs: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if not p.exists():
            raise UserError(f"{p} does not exist")
        for marker, bucket in ((CHAIN_NAME, chains), ("report.json", runs)):
            if (p / marker).is_file():
                bucket.append(p)
            elif p.is_dir():
                bucket.extend(sorted(m.parent for m in p.rglob(marker)))
    chains = [c for c in dict.fromkeys(chains) if (c / LOG_NAME).is_file()]
    return chains, list(dict.fromkeys(runs))


def _jsonl(records: list[BaseModel]) -> str:
    return "".join(r.model_dump_json() + "\n" for r in records)


def export_feedback(paths: list[Path], out_dir: Path, min_margin: float = MIN_MARGIN) -> ExportSummary:
    """Write sft.jsonl, dpo.jsonl and manifest.json into out_dir (each atomically)."""
    if min_margin <= 0:
        raise UserError(f"--min-margin must be above 0 (got {min_margin})")
    chains, runs = find_sources(paths)
    if not chains and not runs:
        raise UserError(
            "found no SSPO chain (chain.json + sspo_log.csv) and no make run "
            f"(report.json) under {', '.join(map(str, paths))}"
        )
    sft: list[SFTRecord] = []
    dpo: list[DPORecord] = []
    for folder in chains:
        s, d = from_chain(folder, min_margin)
        sft += s
        dpo += d
    for folder in runs:
        s, d = from_run(folder, min_margin)
        sft += s
        dpo += d
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    sft_path, dpo_path = out_dir / "sft.jsonl", out_dir / "dpo.jsonl"
    atomic_write_text(sft_path, _jsonl(sft))
    atomic_write_text(dpo_path, _jsonl(dpo))
    summary = ExportSummary(
        sft=str(sft_path),
        dpo=str(dpo_path),
        sft_records=len(sft),
        dpo_records=len(dpo),
        chains=[str(c) for c in chains],
        runs=[str(r) for r in runs],
        min_margin=min_margin,
    )
    atomic_write_text(
        out_dir / "manifest.json",
        json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                **summary.model_dump(),
                "sft_schema": SFTRecord.model_json_schema(),
                "dpo_schema": DPORecord.model_json_schema(),
            },
            indent=2,
        ),
    )
    return summary


# ---------------------------------------------------------------------------------------------
# the prompt enhancer's pairs

STARTER_SFT = Path(__file__).with_name("data") / "enhancer_sft.jsonl"
MODE_WORDS = {"t2v": "text-to-video", "i2v": "image-to-video"}


def enhancer_brief(scene: Scene, bible: StoryBible, mode: Mode = "t2v", level: str = "full") -> str:
    """The enhancer's simple prompt: the scene's plain action and time, then the bible's facts
    (each character's identity sentence, the location's palette sentence, at the composer's
    `level`: "full" or "brief") and the shot's mode."""
    cast = " ".join(
        character_sentence(bible.character(c), level, i == 0) for i, c in enumerate(scene.character_ids)
    )
    place = location_sentence(bible.location(scene.location_id), level)
    return (
        f"Scene: {scene_brief(scene)} Cast: {cast or 'nobody.'} Place: {place.removeprefix('In ')} "
        f"Shot: {MODE_WORDS[mode]}."
    )


def brief_mode(brief: str) -> Mode:
    """The mode an enhancer brief asks for (t2v where it does not say)."""
    return "i2v" if brief.rstrip().endswith(f"Shot: {MODE_WORDS['i2v']}.") else "t2v"


def _row_json(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def enhancer_rows(folder: Path, min_margin: float) -> tuple[list[dict], list[dict]]:
    """One film run: per scene, the best take's prompt for SFT, and every pair of its takes whose
    rewards differ by at least `min_margin` (better one chosen) for DPO."""
    report = read_report(folder)
    shot_mode = str(report.settings.get("run", {}).get("shot_mode", "continuous"))
    scenes = {s.index: s for s in report.bible.scenes}
    sft: list[dict] = []
    dpo: list[dict] = []
    for sc in report.scenes:
        if sc.scene not in scenes or not sc.attempts:
            continue
        brief = enhancer_brief(scenes[sc.scene], report.bible, prompt_mode(sc.scene, shot_mode))
        ranked = sorted(sc.attempts, key=lambda a: (-a.reward.total, a.attempt))
        src = f"{folder}#scene{sc.scene}"
        best = ranked[0]
        sft.append(
            {
                "prompt": brief,
                "completion": best.prompt,
                "reward": best.reward.total,
                "source": f"{src}/attempt{best.attempt}",
            }
        )
        seen: set[tuple[str, str]] = set()
        for i, hi in enumerate(ranked):
            for lo in ranked[i + 1 :]:
                margin = hi.reward.total - lo.reward.total
                key = (hi.prompt, lo.prompt)
                if hi.prompt == lo.prompt or margin <= 0 or margin < min_margin or key in seen:
                    continue
                seen.add(key)
                dpo.append(
                    {
                        "prompt": brief,
                        "chosen": hi.prompt,
                        "rejected": lo.prompt,
                        "chosen_reward": hi.reward.total,
                        "rejected_reward": lo.reward.total,
                        "margin": round(margin, 6),
                        "source": f"{src}/attempt{hi.attempt}>attempt{lo.attempt}",
                    }
                )
    return sft, dpo


def write_enhancer_pairs(runs: list[Path], out: Path, min_margin: float = MIN_MARGIN) -> dict[str, int]:
    """The enhancer's SFT rows `{prompt, completion}` and DPO rows `{prompt, chosen, rejected}`
    from the film runs at or below `runs`: into out/sft.jsonl and out/dpo.jsonl for a folder, or
    into `out` itself and `<stem>.dpo.jsonl` beside it for a `.jsonl` path (each file written
    atomically). A DPO pair's chosen take scores strictly higher, by `min_margin` at least.
    Returns the counts {"runs", "sft", "dpo"}."""
    if not min_margin >= 0:
        raise UserError(f"--min-margin must not be negative (got {min_margin})")
    _, folders = find_sources(runs)
    if not folders:
        raise UserError(f"found no make run (report.json) under {', '.join(map(str, runs))}")
    sft: list[dict] = []
    dpo: list[dict] = []
    for folder in folders:
        s, d = enhancer_rows(folder, min_margin)
        sft += s
        dpo += d
    out = Path(out).expanduser()
    if out.suffix.lower() == ".jsonl":
        sft_path, dpo_path = out, out.with_name(out.stem + ".dpo.jsonl")
    else:
        sft_path, dpo_path = out / "sft.jsonl", out / "dpo.jsonl"
    sft_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sft_path, "".join(map(_row_json, sft)))
    atomic_write_text(dpo_path, "".join(map(_row_json, dpo)))
    return {"runs": len(folders), "sft": len(sft), "dpo": len(dpo)}


def compose_starter(captions: list[str], seed: int = 0) -> list[dict]:
    """The starter SFT rows: each caption planned (offline, one scene) and written by the
    offline composer, text-to-video and image-to-video in turn."""
    from cinerl.planning.offline import plan_story

    rows = []
    for i, caption in enumerate(captions):
        bible = plan_story(caption, seed=seed, scenes=1)
        scene = bible.scenes[0]
        mode: Mode = "t2v" if i % 2 == 0 else "i2v"
        rows.append(
            {
                "prompt": enhancer_brief(scene, bible, mode),
                "completion": offline_prompt(scene, bible, mode).text(mode),
                "source": f"starter:{caption}",
            }
        )
    return rows


def read_rows(
    path: Path, keys: tuple[str, ...] = ("prompt", "completion"), what: str = "--data"
) -> list[dict]:
    """The rows of a JSONL file, each checked to hold non-empty text under `keys`; a missing or
    empty file, a line that is not a JSON object, or a row without a key is one UserError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{what} {path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{what} {path}: line {n} is not JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{what} {path}: line {n} is not a JSON object")
        for key in keys:
            value = row.get(key)
            if not isinstance(value, (str, list)) or not value:
                raise UserError(f"{what} {path}: line {n} has no {key!r}")
        rows.append(row)
    if not rows:
        raise UserError(f"{what} {path}: the file has no rows")
    return rows
