#!/usr/bin/env python3
"""Reference for `npm run bench:index`: a plain pydicom loop over the same files.
Usage: index_pydicom.py FOLDER...  -> prints JSON {files, read, failed, seconds, maxrss_kb}"""
import json, os, resource, sys, time

import pydicom

t0 = time.perf_counter()
files = read = failed = 0
for root in sys.argv[1:]:
    for d, _, names in os.walk(root):
        for n in names:
            files += 1
            try:
                pydicom.dcmread(os.path.join(d, n), stop_before_pixels=True)
                read += 1
            except Exception:
                failed += 1
secs = time.perf_counter() - t0
print(json.dumps({"files": files, "read": read, "failed": failed, "seconds": secs,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "pydicom": pydicom.__version__}))
