#!/usr/bin/env python3
"""PyTorch CPU reference for `npm run bench:train`.

Builds the same VQ-VAE as src/core/ml/vqvae.ts (encoder E1-E5, vector quantiser with
straight-through gradient, decoder D1-D4), the same composite loss
(0.2 MSE + 0.2 masked MSE + 0.8 VQ - 0.1 SSIM) and the same optimiser, then times training
steps on random data. Prints one JSON object on stdout.

usage: train_torch.py --size 128 --w1 32 --w2 64 --blocks 2 --latent 64 --codes 512
                      --channels 1 --batch 8 --steps 20 --warmup 3 --threads 2 --optim adam
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x):
        return x + self.c2(F.relu(self.bn(self.c1(x))))


class VQ(nn.Module):
    def __init__(self, k, d, beta=0.25):
        super().__init__()
        self.emb = nn.Embedding(k, d)
        self.emb.weight.data.uniform_(-1.0 / k, 1.0 / k)
        self.beta = beta

    def forward(self, z):  # z: N C H W
        zp = z.permute(0, 2, 3, 1).contiguous()
        flat = zp.view(-1, zp.shape[-1])
        d = (flat ** 2).sum(1, keepdim=True) + (self.emb.weight ** 2).sum(1) - 2 * flat @ self.emb.weight.t()
        idx = d.argmin(1)
        q = self.emb(idx).view(zp.shape)
        loss = F.mse_loss(q, zp.detach()) + self.beta * F.mse_loss(zp, q.detach())
        q = zp + (q - zp).detach()
        return q.permute(0, 3, 1, 2).contiguous(), loss


class VQVAE(nn.Module):
    def __init__(self, ch, w1, w2, blocks, latent, codes):
        super().__init__()
        lr = lambda: nn.LeakyReLU(0.01)
        self.enc = nn.Sequential(
            nn.Conv2d(ch, w1, 4, 2, 1), nn.BatchNorm2d(w1), lr(),
            nn.Conv2d(w1, w2, 4, 2, 1), nn.BatchNorm2d(w2), lr(),
            nn.Conv2d(w2, w2, 3, 1, 1), nn.BatchNorm2d(w2), lr(),
            *[Res(w2) for _ in range(blocks)],
            lr(), nn.Conv2d(w2, latent, 1), nn.BatchNorm2d(latent), lr(),
        )
        self.vq = VQ(codes, latent)
        self.dec = nn.Sequential(
            nn.Conv2d(latent, w2, 3, 1, 1), nn.BatchNorm2d(w2), lr(),
            *[Res(w2) for _ in range(blocks)], lr(),
            nn.ConvTranspose2d(w2, w1, 4, 2, 1), nn.BatchNorm2d(w1), lr(),
            nn.ConvTranspose2d(w1, ch, 4, 2, 1), nn.BatchNorm2d(ch), nn.Tanh(),
        )

    def forward(self, x):
        q, vq = self.vq(self.enc(x))
        return self.dec(q), vq


def gaussian_window(size=11, sigma=1.5):
    g = torch.exp(-((torch.arange(size, dtype=torch.float32) - size // 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g


def ssim(x, y, size=11, sigma=1.5, k1=0.01, k2=0.03, data_range=1.0):
    c = x.shape[1]
    g = gaussian_window(size, sigma)
    wh = g.view(1, 1, 1, size).repeat(c, 1, 1, 1)
    wv = g.view(1, 1, size, 1).repeat(c, 1, 1, 1)
    blur = lambda t: F.conv2d(F.conv2d(t, wh, groups=c), wv, groups=c)
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return m.mean()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--w1", type=int, default=32)
    p.add_argument("--w2", type=int, default=64)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--codes", type=int, default=512)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--optim", default="adam")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = VQVAE(a.channels, a.w1, a.w2, a.blocks, a.latent, a.codes)
    params = sum(p.numel() for p in model.parameters())
    if a.optim == "radam":
        opt = torch.optim.RAdam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(a.batch, a.channels, a.size, a.size)
    mask = torch.zeros_like(x)
    mask[:, :, a.size // 4: a.size // 2, a.size // 4: a.size // 2] = 1
    xin = x * (1 - mask)

    def step():
        opt.zero_grad(set_to_none=True)
        out, vq = model(xin)
        mse = F.mse_loss(out, x)
        mmse = ((out - x) ** 2 * mask).sum() / mask.sum().clamp(min=1)
        s = ssim(out, x)
        loss = 0.2 * mse + 0.2 * mmse + 0.8 * vq - 0.1 * s
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    c0 = time.process_time()
    losses = [step() for _ in range(a.steps)]
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "params": params,
        "imagesPerSecond": a.batch * a.steps / dt,
        "msPerStep": 1000 * dt / a.steps,
        "cpuMsPerImage": 1000 * cpu / (a.batch * a.steps),
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "firstLoss": losses[0],
        "lastLoss": losses[-1],
    }))


if __name__ == "__main__":
    main()
