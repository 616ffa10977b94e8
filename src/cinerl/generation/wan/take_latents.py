"""One Wan take's final latents on disk (`attempt_KK.latents.safetensors`, `cinerl make
--save-latents`): what the preference trainer needs to use the take without re-encoding it.

Tensors (safetensors, CPU):
- `latents` (C, T, H, W) float32: the denoised latents in the transformer's (normalised) space,
  what the pipeline returns with `output_type="latent"`;
- `prompt_embeds` (L, D): the text encoder's output for the take's prompt (the model's dtype);
- `condition` (optional): the image conditioning as the pipeline built it: for the 5B the first
  frame's latent (C, 1, H, W), replaced into latent frame 0 (`condition_kind` "first_frame");
  for I2V-A14B the mask and image latents concatenated on channels (20, T, H, W)
  (`condition_kind` "concat").
Metadata (strings): variant, seed, width, height, num_frames, prompt, prompt_key (sha256 of the
prompt and the text-encoder length), condition_kind, first_last_frame, format.

Wan's VAE is causal in time (latent frame 0 holds one frame, each later one four), so a take
cropped to its first `(n - 1) // 4 + 1` latent frames is exactly the latents of its first n frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "cinerl.take_latents.v1"
SUFFIX = ".latents.safetensors"
CONDITION_KINDS = ("none", "first_frame", "concat")


def prompt_key(prompt: str, max_seq_len: int) -> str:
    """What names one prompt embedding: the text and the encoder's sequence length."""
    return hashlib.sha256(f"{max_seq_len}\x00{prompt}".encode()).hexdigest()[:20]


def latent_frames(num_frames: int, temporal: int = 4) -> int:
    """Latent frames of a 4k+1-frame clip (Wan's causal VAE: one, then four per latent)."""
    return (int(num_frames) - 1) // temporal + 1


@dataclass
class TakeLatents:
    latents: object  # torch.Tensor (C, T, H, W)
    prompt_embeds: object  # torch.Tensor (L, D)
    condition: object | None = None
    condition_kind: str = "none"
    meta: dict = field(default_factory=dict)

    def tensors(self) -> dict:
        out = {"latents": self.latents.contiguous(), "prompt_embeds": self.prompt_embeds.contiguous()}
        if self.condition is not None:
            out["condition"] = self.condition.contiguous()
        return out

    def metadata(self) -> dict[str, str]:
        meta = {k: str(v) for k, v in self.meta.items()}
        meta.update(format=FORMAT, condition_kind=self.condition_kind)
        return meta

    def to_bytes(self) -> bytes:
        from safetensors.torch import save

        return save(self.tensors(), metadata=self.metadata())

    def save(self, path: Path) -> Path:
        from cinerl.core.media import atomic_write_bytes

        return atomic_write_bytes(path, self.to_bytes())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.latents.shape)


def read_meta(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The metadata and tensor shapes of a latents file, without reading the tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    return meta, shapes


def read_take_latents(path: Path) -> TakeLatents:
    from safetensors.torch import load_file

    meta, _ = read_meta(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a CineRL take-latents file (format {meta.get('format')!r})")
    t = load_file(str(path))
    kind = meta.pop("condition_kind", "none")
    meta.pop("format", None)
    return TakeLatents(t["latents"], t["prompt_embeds"], t.get("condition"), kind, meta)
