"""Text-video alignment with CLIP or SigLIP loaded from a local folder (``clip_model_path``).

8 evenly spaced frames (from the analysis frames: shorter side resized to the model's input size,
centre crop, the folder's normalisation) and the prompt are embedded; per frame:

* CLIP: CLIPScore (Hessel et al., EMNLP 2021) = 2.5 * max(cos, 0), clipped to 1;
* SigLIP: the model's own match probability sigmoid(logit_scale * cos + logit_bias)
  (Zhai et al., "Sigmoid loss for language image pre-training", ICCV 2023).

value = mean over frames. The model and tokenizer load once per process.
"""

from __future__ import annotations

import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.rewards.backbones.clip import ClipBundle, clip_bundle, image_embeddings, text_embeddings

N_FRAMES = 8
CLIPSCORE_W = 2.5


@register(name="clip_alignment", group="text_alignment", requires=("clip_model_path",))
def clip_alignment(analysis: ClipAnalysis, ctx: ScoreContext):
    """Prompt-frame agreement with CLIP (CLIPScore) or SigLIP (match probability)."""
    if not (ctx.prompt or "").strip():
        return not_applicable("no prompt to align with")
    try:
        bundle = clip_bundle(analysis.config)
    except Exception as exc:
        return unavailable(f"CLIP/SigLIP model failed to load: {type(exc).__name__}: {exc}")
    import torch

    with torch.inference_mode():
        return _clip_alignment(analysis, ctx, bundle)


def _clip_alignment(analysis: ClipAnalysis, ctx: ScoreContext, bundle: ClipBundle):
    import torch

    idx = analysis.sample_indices(N_FRAMES)
    img = image_embeddings(bundle, [analysis.frames[i] for i in idx])
    txt = text_embeddings(bundle, [ctx.prompt])
    cos = (img @ txt.T).squeeze(1)
    if bundle.model_type == "siglip":
        m = bundle.model
        per = torch.sigmoid(cos * m.logit_scale.exp() + m.logit_bias)
        formula = "mean_frames sigmoid(logit_scale * cos + logit_bias) (SigLIP)"
    else:
        per = torch.clamp(CLIPSCORE_W * torch.clamp(cos, min=0), max=1.0)
        formula = "mean_frames min(1, 2.5 * max(cos, 0)) (CLIPScore)"
    per = per.float().cpu().numpy()
    return ok(
        float(np.mean(per)),
        model_type=bundle.model_type,
        model=str(analysis.config.clip_model_path),
        cosine=[round(float(c), 4) for c in cos.float().cpu().numpy()],
        frames=[int(i) for i in idx],
        formula=formula,
    )
