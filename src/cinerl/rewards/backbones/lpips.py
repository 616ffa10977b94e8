"""LPIPS (Zhang, Isola, Efros, Shechtman & Wang, "The unreasonable effectiveness of deep features
as a perceptual metric", CVPR 2018), AlexNet variant v0.1, in plain torch, weights from a path.

Network facts: AlexNet conv features tapped after the ReLUs of its five conv layers (64, 192,
384, 256, 256 channels); input scaled to [-1, 1] then shifted/scaled by the fixed ScalingLayer
(shift -0.030, -0.088, -0.188; scale 0.458, 0.448, 0.450); each tap unit-normalised over
channels, squared difference, a learned non-negative 1x1 conv ("lin" layer, no bias), spatial
mean, summed over taps.

``lpips_path`` may be
* a file with the full state dict of the ``lpips`` package's ``LPIPS(net='alex')`` module
  (keys ``net.slice1.0.weight`` ... ``lin0.model.1.weight`` ...), or
* a folder with ``alexnet.pth`` (torchvision AlexNet state dict, keys ``features.N.*``) and
  ``alex.pth`` (the lpips package's v0.1 lin-layer weights, keys ``linN.model.1.weight``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cinerl.models.cache import cached_model, resolve_device

CHANNELS = (64, 192, 384, 256, 256)
# torchvision AlexNet feature indices of the five convs, and lpips' slice boundaries
CONV_INDEX = (0, 3, 6, 8, 10)
SLICE_OF_CONV = (1, 2, 3, 4, 5)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class LpipsUnavailable(RuntimeError):
    pass


class _Lin(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))


class _AlexTaps(nn.Module):
    """AlexNet conv stack split into lpips' five slices (module indices as torchvision's)."""

    def __init__(self):
        super().__init__()
        feats = [
            nn.Conv2d(3, 64, 11, 4, 2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
        ]
        bounds = [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)]
        for s, (a, b) in enumerate(bounds, start=1):
            sl = nn.Sequential()
            for i in range(a, b):
                sl.add_module(str(i), feats[i])
            setattr(self, f"slice{s}", sl)

    def forward(self, x):
        out = []
        for s in range(1, 6):
            x = getattr(self, f"slice{s}")(x)
            out.append(x)
        return out


class Lpips(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.net = _AlexTaps()
        for i, c in enumerate(CHANNELS):
            setattr(self, f"lin{i}", _Lin(c))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (N, 3, H, W) in [-1, 1] -> (N,) distances."""
        fa = self.net((a - self.shift) / self.scale)
        fb = self.net((b - self.shift) / self.scale)
        total = 0.0
        for i, (x, y) in enumerate(zip(fa, fb)):
            x = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            y = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{i}").model((x - y) ** 2).mean(dim=(2, 3))
        return total.view(-1)


def _state_from_path(path: Path) -> dict:
    if path.is_dir():
        alex, lin = path / "alexnet.pth", path / "alex.pth"
        if not (alex.is_file() and lin.is_file()):
            raise LpipsUnavailable(
                f"{path} needs alexnet.pth (torchvision AlexNet) and alex.pth (lpips lin layers)"
            )
        back = torch.load(alex, map_location="cpu", weights_only=True)
        state = {}
        for ci, s in zip(CONV_INDEX, SLICE_OF_CONV):
            for p in ("weight", "bias"):
                state[f"net.slice{s}.{ci}.{p}"] = back[f"features.{ci}.{p}"]
        state.update(torch.load(lin, map_location="cpu", weights_only=True))
        return state
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    raise LpipsUnavailable(f"lpips_path {path} does not exist")


def load_lpips(path: Path, device: str) -> Lpips:
    net = Lpips()
    state = _state_from_path(path)
    state = {
        k: v
        for k, v in state.items()
        if k not in ("shift", "scale", "scaling_layer.shift", "scaling_layer.scale")
    }
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in ("shift", "scale")]
    if missing or unexpected:
        raise LpipsUnavailable(
            f"{path} is not an LPIPS AlexNet state dict (missing {missing[:4]}, unexpected {unexpected[:4]})"
        )
    return net.eval().to(device)


def lpips_model(config) -> Lpips:
    device = resolve_device(config.device)
    p = config.path("lpips_path")
    return cached_model("lpips", str(p), device, lambda: load_lpips(p, device))


def t_lpips(analysis, warped_gray: np.ndarray | None = None, batch: int = 16) -> np.ndarray:
    """LPIPS between each flow pair's frame t and frame t+1 warped back by the shared flow (RGB)."""
    import cv2

    try:
        net = lpips_model(analysis.config)
    except LpipsUnavailable:
        raise
    except Exception as exc:
        raise LpipsUnavailable(f"LPIPS failed to load: {type(exc).__name__}: {exc}") from exc
    h, w = analysis.height, analysis.width
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    pairs = analysis.flow_pairs
    a_list, b_list = [], []
    for k, i in enumerate(pairs):
        fl = analysis.flow[k]
        b_list.append(
            cv2.remap(
                analysis.frames[i + 1],
                gx + fl[..., 0],
                gy + fl[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        )
        a_list.append(analysis.frames[i])
    dev = next(net.parameters()).device
    out = []
    with torch.inference_mode():
        for s in range(0, len(a_list), batch):
            ta = (
                torch.from_numpy(np.stack(a_list[s : s + batch])).to(dev).permute(0, 3, 1, 2).float() / 127.5
                - 1
            )
            tb = (
                torch.from_numpy(np.stack(b_list[s : s + batch])).to(dev).permute(0, 3, 1, 2).float() / 127.5
                - 1
            )
            out.append(net(ta, tb).float().cpu().numpy())
    return np.concatenate(out)


__all__ = ["Lpips", "LpipsUnavailable", "load_lpips", "t_lpips"]
