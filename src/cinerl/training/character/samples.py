"""Sample images while a character LoRA trains (`--sample-every N`): every N steps, a few fixed
prompts that name the trigger phrase, each at a fixed seed, generated as one-frame Wan videos
through the transformer being trained (its LoRA active) and written to
`LORA_DIR/samples/step_NNNNNN_K.png`, so the LoRA's progress is seen on the same noise each time.

The prompts' UMT5 embeddings are computed once, with the training captions', so the text encoder
is not kept; the VAE is kept to decode. diffusers' WanPipeline does the sampling (prompt_embeds
given, tokenizer and text encoder left out). A14B trained on one expert samples through that
expert alone over the whole schedule (the other expert is not loaded while training): a
preview of what the LoRA learned, not the film's two-expert image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SAMPLES = "samples"
# fixed prompts that carry the trigger: a portrait, a half-body shot and a scene, so the preview
# shows the face at three scales (the DreamBooth practice of validation prompts per checkpoint)
PROMPTS = (
    "a portrait photo of {trigger}, looking at the camera, soft light",
    "{trigger} in a red coat, medium shot, walking in a street",
    "a wide shot of {trigger} standing on a harbour at golden hour",
)


def sample_prompts(trigger: str, count: int) -> list[str]:
    return [PROMPTS[k % len(PROMPTS)].format(trigger=trigger) for k in range(count)]


class Sampler:
    """Draws the fixed sample prompts through the training transformer(s)."""

    def __init__(self, vae, embeds: list[torch.Tensor], empty: torch.Tensor, variant, size, cfg):
        self.vae = vae
        self.embeds = embeds
        self.empty = empty
        self.variant = variant
        self.width, self.height = size
        self.steps = cfg.sample_steps
        self.guidance = cfg.sample_guidance
        self.seed = cfg.seed

    def pipeline(self, experts: dict):
        from diffusers import WanPipeline

        from cinerl.generation.wan.loading import make_scheduler

        both = "transformer" in experts and "transformer_2" in experts
        first = experts.get("transformer", experts.get("transformer_2"))
        pipe = WanPipeline(
            tokenizer=None,
            text_encoder=None,
            vae=self.vae,
            scheduler=make_scheduler(self.variant),
            transformer=first,
            transformer_2=experts["transformer_2"] if both else None,
            boundary_ratio=self.variant.boundary_ratio if both else None,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def __call__(self, experts: dict, step: int, out: Path) -> list[Path]:
        """The samples at this step, written as PNGs; the transformer(s) left as they were."""
        from cinerl.core.media import save_png

        folder = Path(out) / SAMPLES
        was = {name: m.training for name, m in experts.items()}
        for m in experts.values():
            m.eval()
        dev = next(iter(experts.values())).device
        self.vae.to(dev)
        pipe = self.pipeline(experts)
        paths = []
        try:
            for k, emb in enumerate(self.embeds):
                gen = torch.Generator("cpu").manual_seed(self.seed * 1000 + k)  # the same noise each time
                with torch.no_grad():
                    frames = pipe(
                        prompt_embeds=emb[None].to(dev),
                        negative_prompt_embeds=self.empty[None].to(dev),
                        height=self.height,
                        width=self.width,
                        num_frames=1,
                        num_inference_steps=self.steps,
                        guidance_scale=self.guidance,
                        generator=gen,
                        output_type="np",
                    ).frames[0]
                rgb = np.clip(np.asarray(frames[0], dtype=np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
                path = folder / f"step_{step:06d}_{k}.png"
                save_png(rgb, path)
                paths.append(path)
        finally:
            self.vae.to("cpu")
            for name, m in experts.items():
                m.train(was[name])
        return paths
