// Collects the supervised-ceiling runs (bench/supervised-ceiling.sh) into one JSON: node bench/supervised-ceiling-json.cjs OUT.json NAME... (run in bench/.work/evidence/ceiling)
const fs=require('fs');
const secs={}; const loads=[];
for (const l of fs.readFileSync('timings.txt','utf8').split('\n')) { const m=l.match(/^(\S+) rc=(\d+) seconds=(\d+) load=([\d.]+)/); if (m) secs[m[1]]={rc:+m[2],seconds:+m[3],loadAtEnd:+m[4]}; }
const out=process.argv[2]; const names=process.argv.slice(3);
const arms=[];
for (const n of names) {
  const r=JSON.parse(fs.readFileSync(n+'.json','utf8')); const x=r.results;
  const err=fs.readFileSync(n+'.err','utf8');
  const val=fs.readFileSync(n+'/metrics.jsonl','utf8').split('\n').filter(Boolean).map(JSON.parse).filter(m=>m.split==='val').map(m=>({step:m.step, value: +(m.auroc??m.dice).toFixed(4)}));
  const cfg=JSON.parse(fs.readFileSync(n+'/config.json','utf8'));
  arms.push({ name:n, library: n.startsWith('s1-') ? 'bench/.work/evidence/label-efficiency-1-L120/library.sqlite' : n.startsWith('s3-') ? 'bench/.work/evidence/label-efficiency-3-L120/library.sqlite' : n.includes('739') ? 'bench/.work/evidence/label-efficiency-ablation-2/library.sqlite' : 'bench/.work/evidence/label-efficiency-2-L120/library.sqlite', config: { size: cfg.size, preset: cfg.preset, steps: cfg.steps, evalEvery: cfg.evalEvery, earlyStopPatience: cfg.earlyStopPatience ?? null, lr: cfg.lr, batchSize: cfg.batchSize, seed: cfg.seed, splitSeed: cfg.splitSeed, fractions: cfg.fractions, label: cfg.label, window: [cfg.windowLevel, cfg.windowWidth], seriesIds: cfg.seriesIds, trainSeriesIds: cfg.trainSeriesIds ?? [] }, task:x.task, cohortSeed: r.split.splits.test.list[0].key.split('-')[0].replace('SYN',''), labelledTrainingPatients:r.split.splits.train.patients, trainingSlices:r.split.splits.train.slices,
    validationPatients:r.split.splits.val.patients, testPatients:x.patients, testSlices:x.slices, testPositives:x.positives, earlyStop:x.earlyStop??null, stepsTrained:r.steps,
    metric: x.task==='classification'?'auroc':'dice', value:+(x.auroc??x.dice).toFixed(4), ci95:(x.aurocCi95??x.diceCi95).map(v=>+v.toFixed(4)),
    ...(x.task==='classification' && {sensitivity:+x.sensitivity.toFixed(3), specificity:+x.specificity.toFixed(3)}), ...(x.task==='segmentation' && {iou:+x.iou.toFixed(4), meanSliceDice:+x.meanSliceDice.toFixed(4)}),
    validation: val, seconds: secs[n]?.seconds ?? null, loadAtEnd: secs[n]?.loadAtEnd ?? null, testPatientKeys: r.split.splits.test.list.map(p=>p.key), warnings:x.warnings });
}
fs.writeFileSync(out, JSON.stringify({ generated:new Date().toISOString(), machine:'2 x AMD EPYC, 24 GiB, wasm backend, shared with other engineers; every run under nice -n 19', arms }, null, 1)+'\n');
for (const a of arms) console.log(a.name, a.labelledTrainingPatients, a.metric, a.value, a.ci95, a.earlyStop?`best ${a.earlyStop.bestStep} stop ${a.earlyStop.stoppedAtStep}`:'', a.stepsTrained, a.seconds+'s', a.testPatientKeys.length);
