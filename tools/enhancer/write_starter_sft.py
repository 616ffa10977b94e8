"""Writes enhancer_sft.jsonl, the prompt enhancer's starter SFT set, from the RAPO starter captions.

Every STRIDE-th caption of src/cinerl/prompting/rapo/data/starter_captions.csv is planned by the
offline planner (one scene, seed 0) and its detailed prompt written by the offline composer
(`cinerl.training.datasets.prompt_pairs.compose_starter`), text-to-video and image-to-video in
turn, so `cinerl train enhancer sft` works on a fresh machine with no runs. The rows are
reproducible: the same captions give the same file. Run with the project's venv:

    .venv/bin/python tools/enhancer/write_starter_sft.py

It writes into the package's data folder (src/cinerl/training/datasets/data/); it is a tool, not
part of the installed package.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cinerl.training.datasets.prompt_pairs import STARTER_SFT, compose_starter

CAPTIONS = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "cinerl"
    / "prompting"
    / "rapo"
    / "data"
    / "starter_captions.csv"
)
STRIDE = 6


def starter_captions(stride: int = STRIDE) -> list[str]:
    with CAPTIONS.open(encoding="utf-8", newline="") as f:
        captions = [row["Input"] for row in csv.DictReader(f)]
    return captions[::stride]


def main() -> None:
    rows = compose_starter(starter_captions())
    STARTER_SFT.parent.mkdir(parents=True, exist_ok=True)
    STARTER_SFT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} rows to {STARTER_SFT}")


if __name__ == "__main__":
    main()
