"""A plain-PyTorch LMUFormer shaped like the paper's reference code (timing baseline).

``benchmarks/model_speed.py`` times this next to the Keras model in the same run, so the
comparison with "the reference" is a ratio measured on the same machine at the same
moment rather than a quoted figure. Written from the architecture facts in
``shared/REFERENCE.md`` (not from the reference code): channels-first ``nn.Conv1d``
with symmetric padding (as the reference), the LMU memory as an FFT convolution with
the impulse response ``H_k = Abar^k Bbar`` (as the reference), GELU in the channel
mixer, and for the spiking model a LIF that loops in Python over the frames with a
sigmoid surrogate (alpha 4), detach_reset, hard reset -- 11 spiking layers, as the
reference. Trainable parameter counts equal the reference's (1,621,796 and 1,689,894;
checked by ``python benchmarks/reference_torch.py``).

It is a timing baseline only: no streaming form, no export.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lmuformer_keras.lmu import impulse_response, lmu_matrices


class _Heaviside(torch.autograd.Function):
    """Heaviside forward (H(0) = 1), sigmoid-surrogate backward (alpha 4)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(4.0 * x)
        return grad * 4.0 * s * (1.0 - s)


class LIF(nn.Module):
    """Multi-step LIF over dim 1 of ``(B, T, C)``, a Python loop over T."""

    def __init__(self, threshold: float = 1.0, tau: float = 2.0):
        super().__init__()
        self.threshold, self.tau = threshold, tau

    def forward(self, x):
        v = torch.zeros_like(x[:, 0])
        out = []
        for t in range(x.shape[1]):
            h = v + (x[:, t] - v) / self.tau
            s = _Heaviside.apply(h - self.threshold)
            v = h * (1.0 - s.detach())
            out.append(s)
        return torch.stack(out, 1)


class BNT(nn.BatchNorm1d):
    """BatchNorm1d over channels of a ``(B, T, C)`` tensor."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def _conv(cin, cout, k=3, bias=False):
    return nn.Conv1d(cin, cout, k, padding=k // 2, bias=bias)


class PatchEmbedding(nn.Module):
    def __init__(self, features, dim, spiking):
        super().__init__()
        self.spiking = spiking
        chans = [features, dim, dim, dim, dim]
        pairs = zip(chans[:-1], chans[1:], strict=True)
        self.convs = nn.ModuleList(_conv(a, b) for a, b in pairs)
        n_bn = 4
        self.bns = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(n_bn))
        self.lifs = nn.ModuleList(LIF() for _ in range(n_bn)) if spiking else None
        self.rpe = _conv(dim, dim)

    def _lif(self, i, x):  # (B, C, T) -> LIF over T
        return self.lifs[i](x.transpose(1, 2)).transpose(1, 2)

    def forward(self, x):  # (B, T, F) -> (B, T, C)
        x = x.transpose(1, 2)
        if self.spiking:
            x = self.convs[0](x)
            for i in range(3):
                x = self.convs[i + 1](self._lif(i, self.bns[i](x)))
            x = x + self.rpe(self._lif(3, self.bns[3](x)))
        else:
            for conv, bn in zip(self.convs, self.bns, strict=True):
                x = bn(torch.relu(conv(x)))
            x = x + self.rpe(x)
        return x.transpose(1, 2)


class TokenMixer(nn.Module):
    def __init__(self, dim, order, theta, frames, spiking):
        super().__init__()
        self.spiking = spiking
        self.enc = nn.Linear(dim, 1)
        self.hidden = nn.Linear(order + dim, dim)
        self.proj = nn.Conv1d(dim, dim, 1)
        self.bn = BNT(dim)
        a, b = lmu_matrices(order, theta)
        h = impulse_response(a, b, frames).astype(np.float32)  # (T, order)
        h_fft = torch.fft.rfft(torch.from_numpy(h).T, n=2 * frames)
        self.register_buffer("h_fft", h_fft)
        if spiking:
            self.bn_in, self.bn_u = BNT(dim), BNT(1)
            self.bn_m, self.bn_h = BNT(order), BNT(dim)
            self.lif_in, self.lif_u = LIF(0.5), LIF()
            self.lif_m, self.lif_h = LIF(), LIF()

    def forward(self, x):  # (B, T, C)
        t = x.shape[1]
        if self.spiking:
            x = self.lif_in(self.bn_in(x))
            u = self.lif_u(self.bn_u(self.enc(x)))
        else:
            u = torch.relu(self.enc(x))
        uf = torch.fft.rfft(u.transpose(1, 2), n=2 * t)  # (B, 1, F)
        m = torch.fft.irfft(uf * self.h_fft, n=2 * t)[..., :t]  # (B, order, T)
        m = m.transpose(1, 2)
        if self.spiking:
            m = self.lif_m(self.bn_m(m))
            h = self.lif_h(self.bn_h(self.hidden(torch.cat([m, x], -1))))
        else:
            h = torch.relu(self.hidden(torch.cat([m, x], -1)))
        return self.bn(self.proj(h.transpose(1, 2)).transpose(1, 2))


class ChannelMixer(nn.Module):
    def __init__(self, dim, ratio, spiking):
        super().__init__()
        self.spiking = spiking
        self.fc1 = nn.Conv1d(dim, dim * ratio, 1)
        self.fc2 = nn.Conv1d(dim * ratio, dim, 1)
        self.bn1 = nn.BatchNorm1d(dim * ratio)
        # spiking: BN before each LIF; plain: BN after each conv.
        self.bn2 = nn.BatchNorm1d(dim)
        if spiking:
            self.lif1, self.lif2 = LIF(), LIF()

    def forward(self, x):  # (B, T, C)
        x = x.transpose(1, 2)
        if self.spiking:
            x = self.lif1(self.bn2(x).transpose(1, 2)).transpose(1, 2)
            x = self.fc1(x)
            x = self.lif2(self.bn1(x).transpose(1, 2)).transpose(1, 2)
            x = self.fc2(x)
        else:
            x = nn.functional.gelu(self.bn1(self.fc1(x)))
            x = torch.relu(self.bn2(self.fc2(x)))
        return x.transpose(1, 2)


class ReferenceLMUFormer(nn.Module):
    """The reference's SCv2 LMUFormer shape (``spiking``: its spiking twin)."""

    def __init__(self, spiking=False, features=128, frames=128, dim=256, classes=35):
        super().__init__()
        order = 512 if spiking else 256
        self.spiking = spiking
        self.patch = PatchEmbedding(features, dim, spiking)
        self.mixer = TokenMixer(dim, order, float(frames), frames, spiking)
        self.mlp = ChannelMixer(dim, 4, spiking)
        self.head = nn.Linear(dim, classes)
        if spiking:
            self.head_bn, self.head_lif = BNT(dim), LIF()

    def forward(self, x):  # (B, T, F) -> (B, classes)
        x = self.patch(x)
        x = x + self.mixer(x)
        x = x + self.mlp(x)
        if self.spiking:
            x = self.head_lif(self.head_bn(x))
        return self.head(x).mean(1)


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


if __name__ == "__main__":
    for spiking in (False, True):
        print(spiking, trainable_params(ReferenceLMUFormer(spiking)))
