#!/usr/bin/env python3
"""Reads a safetensors file by its published layout with numpy only and prints, per tensor,
its shape, the sum of its values and its first value, as JSON. Used by test/host/export.test.ts."""
import json, struct, sys

import numpy as np

with open(sys.argv[1], "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
base = 8 + n
out = {}
for name, t in header.items():
    if name == "__metadata__":
        continue
    assert t["dtype"] == "F32", t["dtype"]
    b, e = t["data_offsets"]
    a = np.frombuffer(raw[base + b: base + e], dtype="<f4").reshape(t["shape"])
    out[name] = {"shape": list(a.shape), "sum": float(a.astype(np.float64).sum()), "first": float(a.reshape(-1)[0])}
print(json.dumps(out))
