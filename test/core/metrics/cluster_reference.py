#!/usr/bin/python3
"""Reference numbers for test/core/metrics/metrics-cluster-reference.test.ts, from Debian's
python3-numpy and python3-scipy, written independently of src/core/metrics/cluster.ts.

Reads {"cases": [...], "holm": [[p, ...], ...]} as JSON on stdin and prints
{"cases": [...], "holm": [...]}. Each case has slices with scores (one list per model), 0/1 labels
and a patient per slice, and a number of bootstrap resamples B. For each case:

- AUROC of every model from scipy.stats.mannwhitneyu (U / (n1 n0)), not from ranks here;
- the patient (cluster) bootstrap with numpy's own generator: B x K patient indices drawn with
  replacement, each slice weighted by its patient's count, the weighted AUROC as
  w_pos' Psi w_neg / (sum w_pos * sum w_neg) with the pairwise kernel Psi (1 if a positive
  scores above a negative, 1/2 on ties), resamples without both classes left out; the percentile
  interval by numpy.quantile (linear); the same for the pooled Dice 2 sum(w tp) / (2 sum(w tp) +
  sum(w (fp + fn))) when the case has per-slice counts;
- for the paired test (models 0 and 1): the bootstrap standard deviation of the difference, times
  sqrt(K / (K - 1)), and the two-sided p and 95% interval from scipy.stats.t with K - 1 degrees of
  freedom; the percentile p 2 min(#(d <= 0) + 1, #(d >= 0) + 1) / (B_valid + 1).

Holm's adjustment is computed here by its textbook definition (each p_(i) times m - i + 1, then a
running maximum), for the test to compare with.
If numpy or scipy is missing it prints {"missing": "<module>"} and exits 0.
"""
import json
import sys

try:
    import numpy as np
    import scipy.stats as st
except ImportError as e:  # pragma: no cover
    print(json.dumps({"missing": str(e)}))
    sys.exit(0)


def auroc_mw(s, y):
    s, y = np.asarray(s, float), np.asarray(y, int)
    pos, neg = s[y == 1], s[y == 0]
    u = st.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    return float(u) / (len(pos) * len(neg))


def weighted_aurocs(s, y, weights):
    """AUROC of each row of weights (B x n) by the pairwise kernel; NaN without both classes."""
    s, y = np.asarray(s, float), np.asarray(y, int)
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
    wp, wn = weights[:, y == 1], weights[:, y == 0]
    num = ((wp @ psi) * wn).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def cluster_case(case, rng):
    y = np.asarray(case["labels"], int)
    patients = np.asarray(case["patients"], int)
    keys, cl = np.unique(patients, return_inverse=True)
    k = len(keys)
    b = int(case["resamples"])
    draws = rng.integers(0, k, size=(b, k))
    counts = np.zeros((b, k))
    np.add.at(counts, (np.repeat(np.arange(b), k), draws.ravel()), 1)
    weights = counts[:, cl]
    out = {"patients": k, "models": []}
    reps = []
    for s in case["scores"]:
        r = weighted_aurocs(s, y, weights)
        reps.append(r)
        v = r[np.isfinite(r)]
        out["models"].append({
            "auroc": auroc_mw(s, y),
            "lower": float(np.quantile(v, 0.025)),
            "upper": float(np.quantile(v, 0.975)),
            "valid": int(len(v)),
        })
    if "dice" in case:
        tp, fp, fn = (np.asarray(case["dice"][k], float) for k in ("tp", "fp", "fn"))
        num = 2 * weights @ tp
        den = num + weights @ (fp + fn)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(den > 0, num / den, np.nan)
        v = r[np.isfinite(r)]
        out["dice"] = {"dice": float(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())), "lower": float(np.quantile(v, 0.025)), "upper": float(np.quantile(v, 0.975))}
    if len(case["scores"]) >= 2:
        d = reps[0] - reps[1]
        d = d[np.isfinite(d)]
        est = out["models"][0]["auroc"] - out["models"][1]["auroc"]
        se = float(np.std(d, ddof=1) * np.sqrt(k / (k - 1)))
        t = est / se
        half = float(st.t.ppf(0.975, k - 1) * se)
        out["diff"] = {
            "estimate": est,
            "se": se,
            "t": t,
            "p": float(2 * st.t.sf(abs(t), k - 1)),
            "lower": est - half,
            "upper": est + half,
            "percentileLower": float(np.quantile(d, 0.025)),
            "percentileUpper": float(np.quantile(d, 0.975)),
            "percentileP": float(min(1.0, 2 * min((d <= 0).sum() + 1, (d >= 0).sum() + 1) / (len(d) + 1))),
        }
    return out


def holm(ps):
    ps = np.asarray(ps, float)
    m = len(ps)
    order = np.argsort(ps, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * ps[j]))
        adj[j] = running
    return adj.tolist()


def main():
    req = json.load(sys.stdin)
    rng = np.random.default_rng(20240601)
    print(json.dumps({"cases": [cluster_case(c, rng) for c in req["cases"]], "holm": [holm(p) for p in req.get("holm", [])]}))


if __name__ == "__main__":
    main()
