#!/usr/bin/python3
"""Compares two NIfTI files with nibabel, for test/library/volumes/nifti.test.ts.

usage: nifti_compare.py OURS.nii.gz REFERENCE.nii.gz

Both images are brought to the closest canonical (RAS+) voxel order, their voxel values read
with the scaling each declares (scl_slope/scl_inter, so raw values stored by dcm2niix become HU),
and compared. Prints one JSON object:
  shape, sameShape, maxAbsDiff (over all voxels), voxels, differing,
  affineMaxAbsDiff (sform affines after reorientation), qformMaxAbsDiff (ours: qform vs sform),
  ours/reference: header facts (qform_code, sform_code, datatype, scl_slope, scl_inter, affine).
"""
import json
import sys

import nibabel as nib
import numpy as np


def facts(img):
    h = img.header
    return {
        'shape': list(img.shape),
        'datatype': str(h.get_data_dtype()),
        'qform_code': int(h['qform_code']),
        'sform_code': int(h['sform_code']),
        'scl_slope': float(img.dataobj.slope),
        'scl_inter': float(img.dataobj.inter),
        'pixdim': [float(x) for x in h['pixdim'][:4]],
        'affine': np.round(img.affine, 6).tolist(),
    }


def main():
    ours_img = nib.load(sys.argv[1])
    ref_img = nib.load(sys.argv[2])
    out = {'ours': facts(ours_img), 'reference': facts(ref_img)}
    # The qform we wrote must describe the same affine as the sform.
    out['qformMaxAbsDiff'] = float(np.abs(ours_img.header.get_qform() - ours_img.header.get_sform()).max())
    a = nib.as_closest_canonical(ours_img)
    b = nib.as_closest_canonical(ref_img)
    out['shape'] = list(a.shape)
    out['sameShape'] = a.shape == b.shape
    out['affineMaxAbsDiff'] = float(np.abs(a.affine - b.affine).max())
    if a.shape == b.shape:
        da = np.asarray(a.get_fdata(dtype=np.float64))
        db = np.asarray(b.get_fdata(dtype=np.float64))
        diff = np.abs(da - db)
        out['voxels'] = int(da.size)
        out['maxAbsDiff'] = float(diff.max())
        out['differing'] = int((diff > 0).sum())
        out['oursSum'] = float(da.sum())
        out['referenceSum'] = float(db.sum())
    print(json.dumps(out))


if __name__ == '__main__':
    main()
