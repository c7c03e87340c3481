// The supervised-ceiling difficulty sweep (docs/evidence.md, "The supervised ceiling: a difficulty sweep"): collects the
// runs of bench/supervised-ceiling.sh named in a plan into one JSON, with per setting and cohort seed the mean held-out
// AUROC over fine-tuning seeds and its patient-level cluster-bootstrap 95 % interval (2000 resamples of the held-out
// patients, the same draws for every run of a setting: the runs are scored on the same held-out slices).
// usage (in bench/.work/evidence/ceiling): node ../../../supervised-ceiling-sweep.cjs ../../../supervised-ceiling-sweep-plan.json ../../../../docs/evidence/supervised-ceiling-sweep.json
// PLAN: { "settings": [ { "setting": "...", "cohortSeed": 2, "role": "chosen on"|"confirmation"|"sweep", "runs": ["NAME", ...] } ] }
const fs = require('fs');
const [planFile, out] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
const secs = {};
for (const l of fs.readFileSync('timings.txt', 'utf8').split('\n')) {
  const m = l.match(/^(\S+) rc=(\d+) seconds=(\d+) load=([\d.]+)/);
  if (m) secs[m[1]] = { rc: +m[2], seconds: +m[3], loadAtEnd: +m[4] };
}
// A small deterministic generator (mulberry32) for the bootstrap draws.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** AUROC with a weight per slice (ties count half): the held-out patients' bootstrap multiplicities. */
function weightedAuroc(scores, labels, w) {
  const idx = [...scores.keys()].sort((a, b) => scores[a] - scores[b]);
  let wp = 0, wn = 0, sum = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i, tp = 0, tn = 0;
    while (j < idx.length && scores[idx[j]] === scores[idx[i]]) {
      const k = idx[j++];
      if (labels[k]) tp += w[k];
      else tn += w[k];
    }
    sum += tp * (wn + tn / 2);
    wp += tp;
    wn += tn;
    i = j;
  }
  return sum / (wp * wn);
}
const r4 = (v) => +v.toFixed(4);
function arm(n) {
  const run = JSON.parse(fs.readFileSync(n + '.json', 'utf8'));
  const x = run.results;
  const cfg = JSON.parse(fs.readFileSync(n + '/config.json', 'utf8'));
  const val = fs.readFileSync(n + '/metrics.jsonl', 'utf8').split('\n').filter(Boolean).map(JSON.parse).filter((m) => m.split === 'val').map((m) => ({ step: m.step, value: r4(m.auroc) }));
  const lib = fs.existsSync(n + '.lib') ? fs.readFileSync(n + '.lib', 'utf8').trim() : n.startsWith('s1-') ? 'bench/.work/evidence/label-efficiency-1-L120/library.sqlite' : n.startsWith('s3-') ? 'bench/.work/evidence/label-efficiency-3-L120/library.sqlite' : 'bench/.work/evidence/label-efficiency-2-L120/library.sqlite';
  return {
    name: n, library: lib,
    config: { size: cfg.size, preset: cfg.preset, steps: cfg.steps, evalEvery: cfg.evalEvery, earlyStopPatience: cfg.earlyStopPatience ?? null, lr: cfg.lr, batchSize: cfg.batchSize, seed: cfg.seed, splitSeed: cfg.splitSeed, fractions: cfg.fractions, label: cfg.label, window: [cfg.windowLevel, cfg.windowWidth], seriesIds: cfg.seriesIds, trainSeriesIds: cfg.trainSeriesIds ?? [] },
    labelledTrainingPatients: run.split.splits.train.patients, trainingSlices: run.split.splits.train.slices, validationPatients: run.split.splits.val.patients,
    testPatients: x.patients, testSlices: x.slices, testPositives: x.positives, testPositivePatients: x.positivePatients,
    earlyStop: x.earlyStop ?? null, stepsTrained: run.steps, auroc: r4(x.auroc), ci95: x.aurocCi95.map(r4), validation: val,
    seconds: secs[n]?.seconds ?? null, loadAtEnd: secs[n]?.loadAtEnd ?? null, testPatientKeys: run.split.splits.test.list.map((p) => p.key),
    _r: x,
  };
}
const settings = plan.settings.map((s) => {
  const arms = s.runs.map(arm);
  const [a0] = arms;
  for (const a of arms) if (a._r.labels.join() !== a0._r.labels.join() || a._r.patientOfSlice.join() !== a0._r.patientOfSlice.join()) throw new Error(`${a.name}: other held-out slices than ${a0.name}`);
  const P = a0._r.patientOfSlice, L = a0._r.labels;
  const np = Math.max(...P) + 1;
  const mean = (xs) => xs.reduce((p, q) => p + q, 0) / xs.length;
  const est = mean(arms.map((a) => a._r.auroc));
  const R = rng(1), reps = [];
  for (let b = 0; b < 2000; b++) {
    const c = new Array(np).fill(0);
    for (let k = 0; k < np; k++) c[Math.floor(R() * np)]++;
    const w = P.map((p) => c[p]);
    reps.push(mean(arms.map((a) => weightedAuroc(a._r.scores, L, w))));
  }
  reps.sort((p, q) => p - q);
  const ci = [reps[49], reps[1949]];
  for (const a of arms) delete a._r;
  return { ...s, finetuneSeeds: arms.map((a) => a.config.seed), meanAuroc: r4(est), meanCi95: ci.map(r4), arms };
});
fs.writeFileSync(out, JSON.stringify({ generated: new Date().toISOString(), machine: '2 x AMD EPYC, 24 GiB, wasm backend, shared with other engineers; every run under nice -n 19, at most 2 at a time', settings }, null, 1) + '\n');
for (const s of settings) console.log(`${s.setting} | seed ${s.cohortSeed} | ${s.role} | ${s.arms.map((a) => a.auroc.toFixed(3)).join(', ')} | mean ${s.meanAuroc.toFixed(3)} [${s.meanCi95.map((v) => v.toFixed(3)).join(', ')}] | train ${s.arms[0].labelledTrainingPatients}/${s.arms[0].trainingSlices} test ${s.arms[0].testPatients}/${s.arms[0].testSlices}/${s.arms[0].testPositives}`);
