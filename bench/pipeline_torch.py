#!/usr/bin/env python3
"""PyTorch DataLoader reference for `npm run bench:pipeline`.

Reads the same DICOM files as the app's pretraining pipeline (the list bench/pipeline.ts writes
from the run manifest: path, frame, display transform), with pydicom, and does the same steps:
stored values to HU by RescaleSlope/Intercept (PixelPaddingValue -> air, -1024 HU), the
radiological display orientation (transpose / flips of the manifest), the window (level, width;
fixed map (HU - lo) / width, clipped to [0, 1]), a square resize (torch interpolate, mode 'area'
for integer downscales, which averages k x k blocks as the app does; bilinear with aligned pixel
centres otherwise), the masked-region transform (one square set to 0, target = the slice,
mask = the square) and the default collate into batches. A torch.utils.data.DataLoader with
num_workers 0 or 1, shuffled.

Prints one JSON object: slices, seconds (wall), cpuSeconds (this process and its reaped worker
children, resource.getrusage), peakRssMB (largest of this process and its children).

usage: pipeline_torch.py --list FILES.json --size 256 --batch 8 --workers 0 [--mask-percent 10] [--mask-definition area]
                         [--epochs 1] [--warm] [--dump OUT.f32 --dump-count 3]
"""
import argparse
import json
import math
import resource
import time

import numpy as np
import pydicom
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


def hu_of(ds):
    px = ds.pixel_array
    slope = float(getattr(ds, 'RescaleSlope', 1) or 1)
    intercept = float(getattr(ds, 'RescaleIntercept', 0) or 0)
    hu = px.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    pad = getattr(ds, 'PixelPaddingValue', None)
    if pad is not None and not isinstance(pad, (list, tuple, pydicom.multival.MultiValue)):
        hu[px == int(pad)] = -1024.0
    return hu


def display(a, t):
    if t.get('transpose'):
        a = a.T
    if t.get('flipY'):
        a = a[::-1, :]
    if t.get('flipX'):
        a = a[:, ::-1]
    return np.ascontiguousarray(a)


def preprocess(hu, level, width, size):
    lo = level - width / 2.0
    x = torch.from_numpy(hu)
    x = (x.clamp(lo, lo + width) - lo) / width
    h, w = x.shape
    side = max(h, w)
    if h != w:  # centred on a square canvas of air (0 after windowing)
        canvas = torch.zeros(side, side)
        oy, ox = (side - h) // 2, (side - w) // 2
        canvas[oy:oy + h, ox:ox + w] = x
        x = canvas
    if side == size:
        return x
    x = x[None, None]
    k = side / size
    if abs(k - round(k)) < 1e-9 and round(k) >= 2:
        x = F.interpolate(x, size=(size, size), mode='area')
    else:
        x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    return x[0, 0]


class Slices(Dataset):
    def __init__(self, items, level, width, size, mask_percent, mask_definition, seed):
        self.items, self.level, self.width, self.size = items, level, width, size
        f = mask_percent / 100.0
        # src/core/ssl/transforms.ts maskSide / maskBox: 'area' rounds sqrt(f) x size; 'side' truncates
        # f x size and keeps the square off the bottom and right 100/512 of the image
        self.side = max(1, math.floor(math.sqrt(f) * size + 0.5) if mask_definition == 'area' else math.floor(f * size + 1e-9))
        self.margin = math.floor(100 / 512 * size + 0.5) if mask_definition == 'side' else 0
        self.seed = seed

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        it = self.items[i]
        ds = pydicom.dcmread(it['path'])
        img = preprocess(display(hu_of(ds), it['transform']), self.level, self.width, self.size)
        g = torch.Generator().manual_seed(self.seed * 1000003 + i)
        room = max(0, self.size - self.margin - self.side)
        y, x = (int(v) for v in torch.randint(0, room + 1, (2,), generator=g))
        mask = torch.zeros(self.size, self.size)
        mask[y:y + self.side, x:x + self.side] = 1
        inp = img * (1 - mask)
        return inp[None], img[None], mask[None]


def rusage_cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--list', required=True)
    ap.add_argument('--size', type=int, required=True)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--workers', type=int, default=0)
    ap.add_argument('--level', type=float, default=50)
    ap.add_argument('--width', type=float, default=350)
    ap.add_argument('--mask-percent', type=float, default=10)
    ap.add_argument('--mask-definition', choices=['area', 'side'], default='area')
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--warm', action='store_true', help='read every file once, untimed (warm OS page cache, as the app gets)')
    ap.add_argument('--dump')
    ap.add_argument('--dump-count', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    with open(a.list) as f:
        items = json.load(f)
    if a.dump:  # the preprocessed slices of the first files, in list order, for the equivalence check
        out = np.stack([preprocess(display(hu_of(pydicom.dcmread(it['path'])), it['transform']), a.level, a.width, a.size).numpy()
                        for it in items[:a.dump_count]]).astype(np.float32)
        out.tofile(a.dump)
        print(json.dumps({'dumped': int(out.shape[0])}))
        return
    data = Slices(items, a.level, a.width, a.size, a.mask_percent, a.mask_definition, a.seed)
    if a.warm:
        for it in items:
            with open(it['path'], 'rb') as f:
                f.read()
    g = torch.Generator().manual_seed(a.seed)
    cpu0 = rusage_cpu()
    t0 = time.perf_counter()
    n = 0
    for _ in range(a.epochs):
        loader = DataLoader(data, batch_size=a.batch, shuffle=True, num_workers=a.workers, generator=g, drop_last=False)
        it = iter(loader)
        for inp, target, mask in it:
            n += inp.shape[0]
        del it, loader  # joins (reaps) the workers, so their CPU time is in RUSAGE_CHILDREN
    dt = time.perf_counter() - t0
    cpu = rusage_cpu() - cpu0
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps({'slices': n, 'seconds': dt, 'cpuSeconds': cpu, 'peakRssMB': rss, 'torch': torch.__version__,
                      'pydicom': pydicom.__version__, 'workers': a.workers, 'epochs': a.epochs}))


if __name__ == '__main__':
    main()
