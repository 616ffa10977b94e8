"""FVD-lite: Fréchet distance between this clip's I3D features and a reference feature set.

FVD (Unterthiner et al., "Towards accurate generative models of video", 2018) compares Gaussians
fitted to I3D features of two video sets. One clip is not a set, so the clip contributes up to 8
overlapping 16-frame windows (evenly spaced), each embedded by the I3D network:

    FD = |mu_c - mu_r|^2 + Tr(S_c + S_r - 2 (S_c S_r)^(1/2))

with (mu_r, S_r) from the reference set. value = exp(-FD / Tr(S_r)): distances are measured in
units of the reference set's own spread (a clip drawn from the reference distribution lands
around exp(-1) to exp(-2) because 8 windows underestimate its spread; an unrelated clip lower).

``i3d_path``: a TorchScript I3D feature extractor (``torch.jit.load``). It is called on a float
tensor (B, 3, 16, 224, 224) in [-1, 1] as ``model(x, rescale=False, resize=False,
return_features=True)`` (the convention of the StyleGAN-V / common FVD TorchScript export), or as
``model(x)`` when it takes no keywords; the output is flattened to (B, D).
``fvd_reference_path``: an .npz with ``features`` (N, D) or with ``mu`` (D,) and ``sigma`` (D, D).
"""

from __future__ import annotations

import math

import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.rewards.backbones.preprocess import square_batch
from cinerl.models.cache import cached_model, resolve_device

WINDOW = 16
MAX_WINDOWS = 8
SIZE = 224


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """Fréchet distance between two Gaussians (the FID/FVD formula), robust to singular covariances."""
    from scipy import linalg

    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        eps = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def load_reference(path) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(path)
    if "features" in data:
        f = np.asarray(data["features"], np.float64)
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"{path}: 'features' must be (N >= 2, D)")
        return f.mean(0), np.cov(f, rowvar=False)
    if "mu" in data and "sigma" in data:
        return np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
    raise ValueError(f"{path} has neither 'features' nor 'mu' and 'sigma'")


def i3d_features(model, videos, device: str) -> np.ndarray:
    import torch

    x = videos.to(device)
    with torch.inference_mode():
        try:
            out = model(x, rescale=False, resize=False, return_features=True)
        except (TypeError, RuntimeError):
            out = model(x)
    return out.reshape(out.shape[0], -1).float().cpu().numpy().astype(np.float64)


@register(name="fvd_lite", group="visual_quality", requires=("i3d_path", "fvd_reference_path"))
def fvd_lite(analysis: ClipAnalysis, ctx: ScoreContext):
    """I3D features of 16-frame windows against a reference feature set; value = exp(-FD / Tr(S_ref))."""
    cfg = analysis.config
    if analysis.num_frames < WINDOW:
        return not_applicable(f"clip has {analysis.num_frames} frames, fewer than one {WINDOW}-frame window")
    import torch

    device = resolve_device(cfg.device)
    try:
        p = cfg.path("i3d_path")
        model = cached_model(
            "i3d", str(p), device, lambda: torch.jit.load(str(p), map_location=device).eval()
        )
        rp = cfg.path("fvd_reference_path")
        mu_r, s_r = cached_model("fvd-reference", str(rp), "cpu", lambda: load_reference(rp))
    except Exception as exc:
        return unavailable(f"FVD model or reference failed to load: {type(exc).__name__}: {exc}")
    n_win = min(MAX_WINDOWS, analysis.num_frames - WINDOW + 1)
    starts = np.unique(np.rint(np.linspace(0, analysis.num_frames - WINDOW, n_win)).astype(int))
    frames = square_batch(list(analysis.frames), SIZE, (0.5,) * 3, (0.5,) * 3)  # [-1, 1], (T, 3, S, S)
    vids = torch.stack([frames[s : s + WINDOW] for s in starts]).permute(0, 2, 1, 3, 4).contiguous()
    feats = i3d_features(model, vids, device)
    if feats.shape[1] != mu_r.shape[0]:
        return unavailable(f"I3D gives {feats.shape[1]}-D features, the reference set is {mu_r.shape[0]}-D")
    mu_c = feats.mean(0)
    s_c = np.cov(feats, rowvar=False) if len(feats) > 1 else np.zeros_like(s_r)
    fd = frechet_distance(mu_c, np.atleast_2d(s_c), mu_r, s_r)
    spread = float(np.trace(s_r))
    if spread <= 0:
        return unavailable("reference feature set has zero spread (all features identical)")
    return ok(
        math.exp(-max(0.0, fd) / spread),
        fd=fd,
        reference_spread=spread,
        windows=[int(s) for s in starts],
        feature_dim=int(feats.shape[1]),
        formula="exp(-FD(clip windows, reference) / Tr(S_ref))",
    )
