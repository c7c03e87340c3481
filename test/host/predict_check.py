"""Independent check of a prediction's exports (test/host/predict.test.ts), with nibabel and pydicom.

Input: a JSON file with the image NIfTI (ctssl export-nifti), the predicted mask as NIfTI and as
DICOM SEG, the masks the viewer shows (display orientation: patient's left to the right, posterior
down, for axial slices) as lists of foreground pixel indices per SOP Instance UID, and the source
files by SOP Instance UID. Prints what it found as JSON.
"""
import json
import sys

import nibabel as nib
import numpy as np
import pydicom

c = json.load(open(sys.argv[1]))
img = nib.load(c["img"])
nii = nib.load(c["nii"])
out = {}
out["affineEqual"] = bool(np.allclose(img.affine, nii.affine, atol=1e-4))
out["shapeEqual"] = img.shape == nii.shape
vol = np.asarray(nii.dataobj)
out["niftiVoxels"] = int((vol != 0).sum())

seg = pydicom.dcmread(c["seg"])
frames = seg.pixel_array
if frames.ndim == 2:
    frames = frames[None]
out["segVoxels"] = int(frames.sum())
out["segmentLabel"] = str(seg.SegmentSequence[0].SegmentLabel)
out["algorithmType"] = str(seg.SegmentSequence[0].SegmentAlgorithmType)
ref = seg.ReferencedSeriesSequence[0]
out["referencedSeries"] = str(ref.SeriesInstanceUID)
refs = {str(x.ReferencedSOPInstanceUID) for x in ref.ReferencedInstanceSequence}
out["referencesAllInstances"] = refs == set(c["files"].keys())

inv = np.linalg.inv(nii.affine)
shared = seg.SharedFunctionalGroupsSequence[0]
iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
ps = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
row_dir, col_dir = iop[:3], iop[3:]
positions_ok = True
nifti_ok = True
display_ok = True
for k, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
    sop = str(fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
    src = pydicom.dcmread(c["files"][sop], stop_before_pixels=True)
    ipp = np.array([float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient])
    if not np.allclose(ipp, [float(v) for v in src.ImagePositionPatient], atol=1e-3):
        positions_ok = False
    mask = frames[k]
    r, cc = np.nonzero(mask)
    # Each foreground pixel's patient position (LPS) -> RAS -> NIfTI voxel: it must be foreground there.
    lps = ipp[None, :] + cc[:, None] * ps[1] * row_dir[None, :] + r[:, None] * ps[0] * col_dir[None, :]
    ras = lps * np.array([-1, -1, 1])
    ijk = np.rint((inv @ np.c_[ras, np.ones(len(ras))].T)[:3].T).astype(int)
    if len(ijk) and not (vol[ijk[:, 0], ijk[:, 1], ijk[:, 2]] != 0).all():
        nifti_ok = False
    # The viewer's display mask: x to the patient's left, y to posterior (axial).
    shown = np.zeros(mask.size, dtype=np.uint8)
    shown[c["display"].get(sop, [])] = 1
    rows, cols = mask.shape
    dx = "row" if abs(row_dir[0]) > abs(col_dir[0]) else "col"
    width = cols if dx == "row" else rows
    shown = shown.reshape(-1, width)
    stored = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(shown)):
        # display x runs along row_dir (columns) or col_dir (rows), flipped when that direction points right (R)
        if dx == "row":
            sc = x if row_dir[0] > 0 else cols - 1 - x
            sr = y if col_dir[1] > 0 else rows - 1 - y
        else:
            sr = x if col_dir[0] > 0 else rows - 1 - x
            sc = y if row_dir[1] > 0 else cols - 1 - y
        stored[sr, sc] = 1
    if not np.array_equal(stored, mask):
        display_ok = False
out["positionsMatchSources"] = positions_ok
out["segMatchesNifti"] = nifti_ok and out["segVoxels"] == out["niftiVoxels"]
out["segMatchesDisplay"] = display_ok and sum(len(v) for v in c["display"].values()) == out["segVoxels"]
print(json.dumps(out))
