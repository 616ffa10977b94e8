"""The latent cache: video clips without saved latents (imported sets, runs shot without
`--save-latents`) encoded once with the Wan VAE, and their prompts once with the UMT5 encoder.

An entry is a take-latents file (generation/wan/take_latents.py, the format `make --save-latents`
writes) named by the sha256 of the clip's bytes, the size and frame count it was encoded at, the
variant and the prompt key, so the same clip encoded at the same size is never encoded twice and
an edited clip never reuses a stale entry. Frames are resized to cover the size and centre-cropped,
then the first 4k+1 of them (Wan's VAE) encoded as the pipelines encode an image condition
(`retrieve_latents(..., sample_mode="argmax")`, then normalised by the VAE's latents_mean/std).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from cinerl.core.errors import UserError
from cinerl.core.store import sha256_file
from cinerl.generation.wan.take_latents import SUFFIX, TakeLatents, prompt_key

log = logging.getLogger(__name__)


def cover_crop(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to cover (width, height), keeping the aspect, then crop the centre."""
    import cv2

    h, w = frame.shape[:2]
    s = max(width / w, height / h)
    nw, nh = max(width, round(w * s)), max(height, round(h * s))
    img = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x, y = (nw - width) // 2, (nh - height) // 2
    return img[y : y + height, x : x + width]


class LatentCache:
    """Encode-once cache under `folder`; the VAE and text encoder load on first need."""

    def __init__(self, folder: Path, variant, sources=None, components=None, device="cpu", progress=None):
        self.folder = Path(folder)
        self.variant = variant
        self.sources = sources
        self.comp = components
        self.device = device
        self.pipe = None
        self.progress = progress
        self.encoded = 0
        self.hits = 0

    def _load(self):
        if self.pipe is not None:
            return
        import torch
        from diffusers import WanPipeline

        from cinerl.generation.wan.loading import load_components, make_scheduler

        if self.comp is None:
            if self.sources is None:
                raise UserError("clips without latents need the Wan model folder (--model-dir) to encode")
            self.comp = load_components(
                self.sources, dtype=torch.float32, vae_dtype=torch.float32, text_dtype=torch.float32
            )
        self.pipe = WanPipeline(
            tokenizer=self.comp.tokenizer,
            text_encoder=self.comp.text_encoder,
            vae=self.comp.vae,
            scheduler=make_scheduler(self.variant),
        )

    def key(self, clip: Path, prompt: str, width: int, height: int, frames: int) -> str:
        parts = [sha256_file(clip), str(width), str(height), str(frames), self.variant.name]
        parts.append(prompt_key(prompt, self.variant.max_seq_len))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def get(self, clip: Path, prompt: str, width: int, height: int, frames: int) -> Path:
        """The cached latents file of `clip` at this size and length (made if missing)."""
        path = self.folder / f"{self.key(clip, prompt, width, height, frames)}{SUFFIX}"
        if path.is_file():
            self.hits += 1
            return path
        self._load()
        self.encode(clip, prompt, width, height, frames).save(path)
        self.encoded += 1
        return path

    def embed(self, prompt: str):
        import torch

        self._load()
        with torch.no_grad():
            emb, _ = self.pipe.encode_prompt(
                prompt,
                do_classifier_free_guidance=False,
                max_sequence_length=self.variant.max_seq_len,
                device=torch.device("cpu"),
            )
        return emb[0]

    def encode(self, clip: Path, prompt: str, width: int, height: int, frames: int) -> TakeLatents:
        import torch
        from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents

        from cinerl.core.media import read_mp4

        try:
            video, _ = read_mp4(clip)
        except Exception as e:  # a clip PyAV cannot read: the user's file, named
            raise UserError(f"cannot read the clip {clip}: {e}") from None
        usable = (len(video) - 1) // 4 * 4 + 1
        if usable < frames:
            raise UserError(f"{clip} has {len(video)} frames; {frames} are needed")
        video = np.stack([cover_crop(f, width, height) for f in video[:frames]])
        x = torch.from_numpy(video).float().div(127.5).sub(1.0)  # [-1, 1]
        x = x.permute(3, 0, 1, 2).unsqueeze(0)  # (1, 3, T, H, W)
        vae = self.comp.vae
        with torch.no_grad():
            lat = retrieve_latents(vae.encode(x.to(vae.dtype)), sample_mode="argmax").float()
            mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
            inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
            lat = (lat - mean) * inv_std
        meta = {
            "variant": self.variant.name,
            "width": width,
            "height": height,
            "num_frames": frames,
            "prompt": prompt,
            "prompt_key": prompt_key(prompt, self.variant.max_seq_len),
            "source": str(clip),
        }
        return TakeLatents(lat[0].contiguous(), self.embed(prompt).contiguous(), None, "none", meta)
