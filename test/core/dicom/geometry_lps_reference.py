"""Reference for test/core/dicom/geometry-lps.test.ts: the patient (LPS) position of stored pixels,
computed with pydicom and numpy from ImagePositionPatient, ImageOrientationPatient and PixelSpacing
as DICOM PS3.3 C.7.6.2.1.1 defines it (the affine OHIF and 3D Slicer use).

Input: a JSON file of [{path, frame, i, j}] (i = column, j = row of the stored frame).
Output (stdout): [{lps, ipp, iop}] in the same order.

`make SOURCE OUT_DIR`: writes copies of one real slice as small series whose geometry the real data
lacks (anisotropic pixels, row/column directions swapped or reversed, coronal and sagittal planes
with several slices), so that transposes, flips and the PixelSpacing order are exercised.
"""
import json
import sys

import numpy as np
import pydicom


def plane_geometry(ds, frame):
    """IPP, IOP and PixelSpacing of one frame (per-frame groups of enhanced objects first)."""
    ipp = getattr(ds, "ImagePositionPatient", None)
    iop = getattr(ds, "ImageOrientationPatient", None)
    ps = getattr(ds, "PixelSpacing", None)
    if "PerFrameFunctionalGroupsSequence" in ds:
        item = ds.PerFrameFunctionalGroupsSequence[frame]
        if "PlanePositionSequence" in item:
            ipp = item.PlanePositionSequence[0].ImagePositionPatient
        if "PlaneOrientationSequence" in item:
            iop = item.PlaneOrientationSequence[0].ImageOrientationPatient
        if "PixelMeasuresSequence" in item:
            ps = item.PixelMeasuresSequence[0].PixelSpacing
    if "SharedFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0]
        if iop is None and "PlaneOrientationSequence" in shared:
            iop = shared.PlaneOrientationSequence[0].ImageOrientationPatient
        if ps is None and "PixelMeasuresSequence" in shared:
            ps = shared.PixelMeasuresSequence[0].PixelSpacing
    return [float(v) for v in ipp], [float(v) for v in iop], [float(v) for v in (ps or [1.0, 1.0])]


VARIANTS = [
    # (name, IOP, PixelSpacing [rows, columns], step between slices in LPS)
    ("axial-transposed", [0, 1, 0, 1, 0, 0], [0.5, 0.8], [0, 0, -2.0]),
    ("axial-flipped", [-1, 0, 0, 0, -1, 0], [0.6, 0.9], [0, 0, 2.5]),
    ("coronal", [1, 0, 0, 0, 0, -1], [0.7, 1.1], [0, 3.0, 0]),
    ("sagittal-reversed", [0, -1, 0, 0, 0, 1], [0.9, 0.4], [-1.5, 0, 0]),
]


def make(source, out_dir):
    import os
    from pydicom.uid import generate_uid

    for name, iop, ps, step in VARIANTS:
        series_uid = generate_uid()
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
        for k in range(4):
            ds = pydicom.dcmread(source)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesDescription = name
            ds.ImageOrientationPatient = [float(v) for v in iop]
            ds.PixelSpacing = [float(v) for v in ps]
            ds.ImagePositionPatient = [-100.0 + k * step[0], 50.0 + k * step[1], -400.0 + k * step[2]]
            ds.InstanceNumber = 10 - k
            ds.save_as(os.path.join(out_dir, name, f"{k}.dcm"))


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
        return
    with open(sys.argv[1]) as f:
        samples = json.load(f)
    cache = {}
    out = []
    for s in samples:
        key = (s["path"], s["frame"])
        if key not in cache:
            ds = pydicom.dcmread(s["path"], stop_before_pixels=True)
            cache[key] = plane_geometry(ds, s["frame"])
        ipp, iop, ps = cache[key]
        row_dir = np.array(iop[:3])
        col_dir = np.array(iop[3:])
        # PS3.3 C.7.6.2.1.1: P = S + i * delta_i * X + j * delta_j * Y, with delta_i the column
        # spacing (PixelSpacing[1]) and delta_j the row spacing (PixelSpacing[0]).
        m = np.zeros((4, 4))
        m[:3, 0] = row_dir * ps[1]
        m[:3, 1] = col_dir * ps[0]
        m[:3, 3] = ipp
        m[3, 3] = 1.0
        p = m @ np.array([s["i"], s["j"], 0.0, 1.0])
        out.append({"lps": [float(v) for v in p[:3]], "ipp": ipp, "iop": iop})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
