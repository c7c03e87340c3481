#!/usr/bin/env python3
"""Independent reference numbers for test/ml (run once; output committed as reference_numbers.json).

- SSIM: numpy/scipy implementation written from the definition (2-D Gaussian window as an outer
  product, direct 'valid' correlation, window 11, sigma 1.5, k1 0.01, k2 0.03, data range 1),
  on deterministic images stored in the JSON.
- Adam / RAdam: PyTorch 1.13's torch.optim on a fixed parameter and gradient sequence.

usage: /usr/bin/python3 test/ml/reference_numbers.py > test/ml/reference_numbers.json
"""
import json

import numpy as np
from scipy.signal import correlate2d


def gaussian_2d(size=11, sigma=1.5):
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(ax ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    return np.outer(g, g)


def ssim_channel(x, y, size=11, sigma=1.5, k1=0.01, k2=0.03, L=1.0):
    w = gaussian_2d(size, sigma)
    f = lambda a: correlate2d(a, w, mode="valid")
    mx, my = f(x), f(y)
    sxx = f(x * x) - mx * mx
    syy = f(y * y) - my * my
    sxy = f(x * y) - mx * my
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))


def ssim_nhwc(a, b):
    maps = [ssim_channel(a[n, :, :, c], b[n, :, :, c]) for n in range(a.shape[0]) for c in range(a.shape[3])]
    return float(np.mean(maps))


def ssim_cases():
    rng = np.random.RandomState(1234)
    cases = []
    for shape in [(2, 16, 16, 1), (1, 20, 24, 2), (1, 11, 13, 1)]:
        n, h, w, c = shape
        yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        base = 0.5 + 0.4 * np.sin(0.35 * yy[None, :, :, None] + 0.2 * xx[None, :, :, None] + np.arange(n * c).reshape(n, 1, 1, c))
        a = np.clip(base + 0.05 * rng.randn(*shape), 0, 1).astype(np.float32)
        b = np.clip(base * 0.8 + 0.1 + 0.1 * rng.randn(*shape), 0, 1).astype(np.float32)
        cases.append({
            "shape": list(shape),
            "a": [float(v) for v in a.ravel()],
            "b": [float(v) for v in b.ravel()],
            "ssim": ssim_nhwc(a.astype(np.float64), b.astype(np.float64)),
            "ssim_self": ssim_nhwc(a.astype(np.float64), a.astype(np.float64)),
        })
    return cases


def optim_cases():
    import torch
    out = []
    for kind in ["adam", "radam"]:
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0]))
        opt = (torch.optim.Adam if kind == "adam" else torch.optim.RAdam)([p], lr=1e-2)
        grads = []
        values = []
        for t in range(1, 9):
            g = torch.tensor([0.5 * t, -0.3, 0.1 * (t % 3) - 0.1, 2.0 / t])
            grads.append([float(v) for v in g])
            p.grad = g.clone()
            opt.step()
            values.append([float(v) for v in p.detach()])
        out.append({"kind": kind, "lr": 1e-2, "init": [1.0, -2.0, 0.5, 3.0], "grads": grads, "values": values})
    return out


if __name__ == "__main__":
    print(json.dumps({"ssim": ssim_cases(), "optim": optim_cases()}))
