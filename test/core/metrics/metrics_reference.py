#!/usr/bin/python3
"""Reference numbers for test/core/metrics/metrics-reference.test.ts, from Debian's python3-sklearn,
python3-scipy and numpy.

Reads {"cases": [...]} as JSON on stdin and prints a JSON list with one result per case.
DeLong is computed here independently of the TypeScript midrank algorithm (Sun & Xu 2014):
straight from DeLong, DeLong & Clarke-Pearson (1988), with the explicit kernel
psi(X, Y) = 1 if X > Y, 1/2 if X == Y, 0 otherwise over every positive/negative pair.
If sklearn is missing it prints {"missing": "<module>"} and exits 0.
"""
import json
import sys

try:
    import numpy as np
    import scipy
    import scipy.ndimage
    import scipy.special
    import scipy.stats as st
    import sklearn
    from sklearn import metrics as skm
except ImportError as e:  # pragma: no cover
    print(json.dumps({"missing": str(e)}))
    sys.exit(0)


def binary(case):
    y = np.asarray(case["labels"], dtype=int)
    s = np.asarray(case["scores"], dtype=float)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    prec, rec, pthr = skm.precision_recall_curve(y, s)
    j = tpr - fpr
    # Youden: argmax over the points with a real threshold (index 0 is 'nothing positive').
    k = 1 + int(np.argmax(j[1:]))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
    kf = int(np.argmax(f1[:-1]))  # the last PR point has no threshold
    out = {
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr[1:].tolist()},
        "auroc": float(skm.roc_auc_score(y, s)),
        "ap": float(skm.average_precision_score(y, s)),
        "pr": {"precision": prec.tolist(), "recall": rec.tolist(), "thresholds": pthr.tolist()},
        "prAuc": float(skm.auc(rec, prec)),
        "youden": {"threshold": float(thr[k]), "j": float(j[k])},
        "maxF1": {"threshold": float(pthr[kf]), "f1": float(f1[kf])},
        "at": [],
    }
    for t in case.get("thresholds", []):
        yp = (s >= t).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(y, yp, labels=[0, 1]).ravel()
        out["at"].append({
            "threshold": t,
            "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
            "sensitivity": float(skm.recall_score(y, yp, zero_division=0)),
            "specificity": float(tn / (tn + fp)),
            "ppv": float(skm.precision_score(y, yp, zero_division=0)),
            "npv": float(tn / (tn + fn)) if tn + fn > 0 else None,
            "accuracy": float(skm.accuracy_score(y, yp)),
            "f1": float(skm.f1_score(y, yp, zero_division=0)),
        })
    return out


def delong_1988(score_sets, y):
    """DeLong et al. 1988: theta_r = mean psi; V10, V01 structural components; S = S10/m + S01/n."""
    y = np.asarray(y, dtype=int)
    k = len(score_sets)
    v10, v01, aucs = [], [], []
    for s in score_sets:
        s = np.asarray(s, dtype=float)
        x, z = s[y == 1], s[y == 0]  # m positives, n negatives
        psi = (x[:, None] > z[None, :]).astype(float) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))  # one per positive
        v01.append(psi.mean(axis=0))  # one per negative
    v10, v01 = np.array(v10), np.array(v01)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.cov(v10) if k > 1 else np.array([[np.var(v10[0], ddof=1)]])
    s01 = np.cov(v01) if k > 1 else np.array([[np.var(v01[0], ddof=1)]])
    return np.array(aucs), s10 / m + s01 / n


def delong(case):
    aucs, cov = delong_1988([case["scores1"], case["scores2"]], case["labels"])
    diff = aucs[0] - aucs[1]
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = diff / np.sqrt(var)
    p = 2 * st.norm.sf(abs(z))
    return {"auc1": aucs[0], "auc2": aucs[1], "diff": diff, "variance": var, "z": z, "p": p, "covariance": cov.tolist()}


def t_ppf(p, df):
    """scipy 1.10's t.ppf is good to about 1e-9 only; polish it on scipy's own cdf / sf."""
    x0 = st.t.ppf(p, df)
    if p == 0.5:
        return 0.0
    import scipy.optimize as so
    f = (lambda t: st.t.cdf(t, df) - p) if p < 0.5 else (lambda t: (1 - p) - st.t.sf(t, df))
    w = 1e-6 * (1 + abs(x0))
    return so.brentq(f, x0 - w, x0 + w, xtol=1e-300, rtol=1e-15, maxiter=500)


def stats(case):
    x = np.asarray(case["x"], dtype=float)
    y = np.asarray(case["y"], dtype=float)
    out = {}
    for method in ("exact", "asymptotic", "auto"):
        if method == "exact" and (len(np.unique(np.r_[x, y])) != len(x) + len(y)):
            continue
        r = st.mannwhitneyu(x, y, method=method)
        out["mwu_" + method] = [float(r.statistic), float(r.pvalue)]
    r = st.mannwhitneyu(x, y, alternative="greater", method="asymptotic")
    out["mwu_greater"] = [float(r.statistic), float(r.pvalue)]
    if len(x) == len(y):
        d = x - y
        nz = d[d != 0]
        ties = len(np.unique(np.abs(nz))) != len(nz)
        if not ties and len(nz) == len(d):
            r = st.wilcoxon(x, y, method="exact")
            out["wilcoxon_exact"] = [float(r.statistic), float(r.pvalue)]
        r = st.wilcoxon(x, y, method="approx")
        out["wilcoxon_approx"] = [float(r.statistic), float(r.pvalue)]
        r = st.wilcoxon(x, y, method="approx", correction=True)
        out["wilcoxon_approx_corr"] = [float(r.statistic), float(r.pvalue)]
        r = st.ttest_rel(x, y)
        out["ttest_rel"] = [float(r.statistic), float(r.pvalue)]
    r = st.ttest_ind(x, y, equal_var=False)
    out["welch"] = [float(r.statistic), float(r.pvalue)]
    half = t_ppf(0.975, len(x) - 1) * st.sem(x)
    out["mean_ci"] = [float(x.mean()), float(x.mean() - half), float(x.mean() + half)]
    return out


def dist(case):
    xs = case["x"]
    return {
        "erfc": [float(scipy.special.erfc(v)) for v in xs],
        "norm_sf": [float(st.norm.sf(v)) for v in xs],
        "norm_ppf": [float(st.norm.ppf(p)) for p in case["p"]],
        "t_sf": [[float(st.t.sf(v, df)) for v in xs] for df in case["df"]],
        "t_ppf": [[float(t_ppf(p, df)) for p in case["p"]] for df in case["df"]],
        "betainc": [float(scipy.special.betainc(a, b, x)) for a, b, x in case["beta"]],
        "lgamma": [float(scipy.special.gammaln(v)) for v in case["gamma"]],
        "quantile": [float(np.quantile(case["x"], q)) for q in case["p"]],
    }


def components(case):
    nx, ny, nz = case["dims"]
    # Our layout: index = x + nx * (y + ny * z), i.e. a C-order array of shape (nz, ny, nx).
    m = np.asarray(case["mask"], dtype=np.uint8).reshape(nz, ny, nx)
    out = {}
    for conn, rank in ((26, 3), (18, 2), (6, 1)):
        structure = scipy.ndimage.generate_binary_structure(3, rank)
        lab, count = scipy.ndimage.label(m, structure=structure)
        sizes = sorted(int((lab == i).sum()) for i in range(1, count + 1))
        out[str(conn)] = {"count": int(count), "sizes": sizes}
    return out


def dice(case):
    p = np.asarray(case["pred"], dtype=float) > 0.5
    t = np.asarray(case["target"], dtype=float) > 0
    size = case["sliceSize"]
    per = []
    for s in range(0, len(p), size):
        a, b = p[s:s + size], t[s:s + size]
        inter = np.logical_and(a, b).sum()
        tot = a.sum() + b.sum()
        union = np.logical_or(a, b).sum()
        per.append([float(2 * inter / tot) if tot else None, float(inter / union) if union else None])
    inter = np.logical_and(p, t).sum()
    micro = float(2 * inter / (p.sum() + t.sum()))
    micro_iou = float(skm.jaccard_score(t.astype(int), p.astype(int)))
    micro_f1 = float(skm.f1_score(t.astype(int), p.astype(int)))  # Dice = F1 on voxels
    return {"perSlice": per, "micro": micro, "microIou": micro_iou, "microF1": micro_f1}


HANDLERS = {"binary": binary, "delong": delong, "stats": stats, "dist": dist, "components": components, "dice": dice}


def main():
    req = json.load(sys.stdin)
    res = [HANDLERS[c["kind"]](c) for c in req["cases"]]
    print(json.dumps({"versions": {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__}, "results": res},
                     default=float))


if __name__ == "__main__":
    main()
