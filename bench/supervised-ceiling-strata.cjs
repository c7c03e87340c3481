// Which held-out positives a supervised-ceiling run misses (docs/evidence.md, "The supervised ceiling: a difficulty sweep"):
// the AUROC of each stratum of positive slices (nodule type; the largest nodule cross-section on the slice, pixels at the
// stored 128 px, from the generator's manifest) against all held-out negative slices, and the within-patient AUROC.
// usage: node bench/supervised-ceiling-strata.cjs RUN_DIR SYNTH_MANIFEST.json   (RUN_DIR: a `ctssl finetune --task classification` run)
const fs = require('fs');
const [run, synthManifest] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(run + '/results.json', 'utf8'));
const m = JSON.parse(fs.readFileSync(run + '/manifest.json', 'utf8'));
const info = new Map();
for (const p of JSON.parse(fs.readFileSync(synthManifest, 'utf8')).patients)
  for (const st of p.studies)
    for (const n of st.nodules ?? [])
      for (const s of n.slices) {
        const prev = info.get(s.sopInstanceUid);
        if (!prev || prev.area < s.areaPx) info.set(s.sopInstanceUid, { type: n.type, area: s.areaPx });
      }
// The held-out slices in the order they were scored: positives, then negatives (finetuneSliceRefs).
const pos = [], neg = [];
for (const s of m.series) if (s.split === 'test') for (const sl of s.slices) (sl.label === 1 ? pos : neg).push(sl);
const test = [...pos, ...neg];
if (test.length !== r.scores.length || test.some((sl, i) => sl.label !== r.labels[i])) throw new Error(`${run}: the manifest's held-out slices do not match results.json`);
const auc = (p, n) => { let c = 0; for (const a of p) for (const b of n) c += a > b ? 1 : a === b ? 0.5 : 0; return c / (p.length * n.length); };
const negScores = r.scores.filter((_, i) => r.labels[i] === 0);
const groups = {};
r.scores.forEach((sc, i) => {
  if (r.labels[i] === 0) return;
  const x = info.get(test[i].sopUid) ?? { type: 'unknown', area: -1 };
  const bin = x.area < 45 ? 'under 45' : x.area < 60 ? '45-59' : x.area < 100 ? '60-99' : '100 or more';
  (groups[`type ${x.type}`] ??= []).push(sc);
  (groups[`cross-section ${bin} px`] ??= []).push(sc);
});
const out = { run, auroc: +r.auroc.toFixed(4), strata: Object.fromEntries(Object.entries(groups).sort().map(([k, v]) => [k, { positives: v.length, auroc: +auc(v, negScores).toFixed(4) }])) };
const by = {};
r.scores.forEach((s, i) => (by[r.patientOfSlice[i]] ??= { p: [], n: [] })[r.labels[i] ? 'p' : 'n'].push(s));
const within = Object.values(by).filter((x) => x.p.length && x.n.length).map((x) => auc(x.p, x.n)).sort((a, b) => a - b);
out.withinPatient = { patients: within.length, median: +within[within.length >> 1].toFixed(4), below08: within.filter((v) => v < 0.8).length };
console.log(JSON.stringify(out));
