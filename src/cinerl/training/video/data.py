"""Pairs JSONL rows -> training tensors: each side's latents file (saved by `make --save-latents`
or encoded once into the latent cache), checked, and cropped to the training size and length.

A pair whose two takes differ in shape is a user error (the pairs file is wrong). A pair smaller
than the training size or length is left out with the reason; a larger one is cropped: in time
to its first latent frames (exact for Wan's causal VAE), in space about the centre.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cinerl.core.errors import UserError
from cinerl.generation.wan.take_latents import SUFFIX, latent_frames, read_meta, read_take_latents
from cinerl.generation.wan.variants import WanVariant, fit_request
from cinerl.training.datasets.video_pairs import VideoPair

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """The training size in latent units: frames T, height H, width W."""

    frames: int
    height: int
    width: int

    @classmethod
    def of(cls, variant: WanVariant, width: int, height: int, num_frames: int) -> "Target":
        s = variant.vae_spatial
        return cls(latent_frames(num_frames), height // s, width // s)

    def pixels(self, variant: WanVariant) -> tuple[int, int, int]:
        """(width, height, frames) in pixels and frames."""
        s = variant.vae_spatial
        return self.width * s, self.height * s, 4 * (self.frames - 1) + 1

    def with_frames(self, num_frames: int) -> "Target":
        return Target(latent_frames(num_frames), self.height, self.width)


@dataclass
class PairItem:
    row: VideoPair
    chosen: Path
    rejected: Path
    shape: tuple[int, int, int, int]  # (C, T, H, W) of both
    condition_kind: str = "none"
    first_last_frame: bool = False


@dataclass
class PairData:
    variant: WanVariant
    items: list[PairItem]
    target: Target
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def usable(self, target: Target) -> tuple[list[int], list[str]]:
        """Indices of the pairs that reach `target`, and why the others do not."""
        keep, why = [], []
        for i, it in enumerate(self.items):
            _, t, h, w = it.shape
            if t < target.frames or h < target.height or w < target.width:
                wp, hp, fp = target.pixels(self.variant)
                why.append(
                    f"{it.row.source or it.chosen}: latents {t}x{h}x{w} are smaller than the "
                    f"training size {wp}x{hp}, {fp} frames ({target.frames}x{target.height}x{target.width})"
                )
            elif t > target.frames and it.first_last_frame:
                why.append(f"{it.row.source or it.chosen}: a first-last-frame take cannot be cropped in time")
            else:
                keep.append(i)
        return keep, why

    def load(self, i: int, target: Target | None = None) -> dict:
        """One pair's tensors at `target` (default: the data's own): x_w, x_l (C, T, H, W),
        prompt_embeds (L, D), condition or None, condition_kind."""
        it, tg = self.items[i], target or self.target
        w, lo = read_take_latents(it.chosen), read_take_latents(it.rejected)
        if w.condition is not None and lo.condition is not None and w.condition.shape == lo.condition.shape:
            if not torch.equal(w.condition, lo.condition):
                log.debug("%s: the takes' conditions differ; the chosen take's is used", it.row.source)
        cond = crop(w.condition, tg, time=w.condition_kind == "concat") if w.condition is not None else None
        return {
            "x_w": crop(w.latents, tg),
            "x_l": crop(lo.latents, tg),
            "prompt_embeds": w.prompt_embeds,
            "condition": cond,
            "condition_kind": w.condition_kind if cond is not None else "none",
        }


def crop(x: torch.Tensor, tg: Target, time: bool = True) -> torch.Tensor:
    """(C, T, H, W) to the target: the first frames, the centre in space."""
    _, t, h, w = x.shape
    y0, x0 = (h - tg.height) // 2, (w - tg.width) // 2
    x = x[:, : tg.frames] if time else x
    return x[:, :, y0 : y0 + tg.height, x0 : x0 + tg.width].contiguous()


def _side(path: str, row: VideoPair, cache, variant, size) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"pair {row.source or row.prompt[:40]!r}: {p} does not exist")
    if p.name.endswith(SUFFIX):
        return p
    if cache is None:
        raise UserError(f"{p} is a video; encoding needs the Wan model folder")
    w, h, f = size(p, row)
    return cache.get(p, row.prompt, w, h, f)


def prepare(
    rows: list[VideoPair],
    variant: WanVariant,
    cache=None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    progress=None,
) -> PairData:
    """Resolve, check and size every pair (see the module doc)."""

    def size(clip: Path, row: VideoPair) -> tuple[int, int, int]:
        w, h, f = width or row.width, height or row.height, num_frames or row.num_frames
        if not (w and h and f):
            from cinerl.core.media import probe_mp4

            info = probe_mp4(clip)
            w, h, f = w or info["width"], h or info["height"], f or info["frames"]
        fit = fit_request(variant, int(w), int(h), int(f), max_frames=10_000)
        return fit.width, fit.height, fit.num_frames

    items: list[PairItem] = []
    for n, row in enumerate(rows):
        if row.variant and row.variant != variant.name:
            raise UserError(
                f"pair {n + 1} ({row.source}) is a {row.variant} take; this model is {variant.name}"
            )
        cw, cl = _side(row.chosen, row, cache, variant, size), _side(row.rejected, row, cache, variant, size)
        try:
            (mw, sw), (ml, sl) = read_meta(cw), read_meta(cl)
        except Exception as e:  # a damaged file: named, not a traceback
            raise UserError(f"pair {n + 1}: cannot read latents ({e})") from None
        for meta, p in ((mw, cw), (ml, cl)):
            if meta.get("variant") and meta["variant"] != variant.name:
                raise UserError(f"{p} holds {meta['variant']} latents; this model is {variant.name}")
        if sw["latents"] != sl["latents"]:
            raise UserError(
                f"pair {n + 1} ({row.source or row.prompt[:40]}): chosen latents {list(sw['latents'])} "
                f"and rejected {list(sl['latents'])} differ in size"
            )
        if sw["latents"][0] != variant.latent_channels:
            raise UserError(
                f"{cw} has {sw['latents'][0]} latent channels; {variant.name} has {variant.latent_channels}"
            )
        items.append(
            PairItem(
                row,
                cw,
                cl,
                tuple(sw["latents"]),
                mw.get("condition_kind", "none"),
                mw.get("first_last_frame", "False") == "True",
            )
        )
        if progress is not None:
            progress(n + 1, len(rows))
    if width and height and num_frames:
        target = Target.of(variant, width, height, num_frames)
    elif width or height or num_frames:
        first = items[0].shape
        s = variant.vae_spatial
        target = Target(
            latent_frames(num_frames) if num_frames else first[1],
            height // s if height else first[2],
            width // s if width else first[3],
        )
    else:
        target = Target(*items[0].shape[1:])
    data = PairData(variant, items, target)
    keep, why = data.usable(target)
    for w in why:
        log.warning("pair left out: %s", w)
    if not keep:
        raise UserError(f"no pair reaches the training size: {why[0]}")
    data.items = [items[i] for i in keep]
    data.skipped = why
    return data


def collate(samples: list[dict]) -> dict:
    kinds = {s["condition_kind"] for s in samples}
    if len(kinds) > 1:
        raise ValueError(f"one batch mixes conditioning kinds {sorted(kinds)}")
    out = {k: torch.stack([s[k] for s in samples]) for k in ("x_w", "x_l", "prompt_embeds")}
    kind = kinds.pop()
    out["condition"] = torch.stack([s["condition"] for s in samples]) if kind != "none" else None
    out["condition_kind"] = kind
    return out
