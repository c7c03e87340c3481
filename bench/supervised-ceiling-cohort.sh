#!/bin/sh
# A labelled cohort and its labelled pool for the supervised-ceiling sweep (docs/evidence.md, "The supervised
# ceiling: a difficulty sweep"): the label-efficiency study's generator options (32 slices of 128 px, 1-3 nodules)
# with nodule size / contrast changed, indexed into bench/.work/evidence/ceiling/lib-NAME/library.sqlite.
# usage: bench/supervised-ceiling-cohort.sh NAME COHORT_SEED NODULE_SIZE(min-max mm) NODULE_CONTRAST
# writes lib-NAME/labelled.txt (the cohort's CT series ids) and lib-NAME/pool.txt (the pool's series with nodule outlines),
# for bench/supervised-ceiling.sh (DB=..., LABFILE=lib-NAME/labelled.txt, EXTRA lib-NAME/pool).
cd "$(dirname "$0")/.."
W=bench/.work/evidence/ceiling/lib-$1; S=$2; SIZE=$3; CON=$4
mkdir -p $W
G="--slices 32 --size 128 --nodule-size $SIZE --nodules-per-patient 1-3 --nodule-contrast $CON --jobs 2"
C="nice -n 19 node bin/ctssl.mjs"
[ -f $W/labelled/manifest.json ] || { rm -rf $W/labelled; $C synth --out $W/labelled --patients 120 --seed $S $G --json > /dev/null || exit 1; }
[ -f $W/pool/manifest.json ] || { rm -rf $W/pool; $C synth --out $W/pool --patients 240 --seed $((S + 1000)) $G --json > /dev/null || exit 1; }
rm -f $W/library.sqlite*
$C index $W/labelled $W/pool --db $W/library.sqlite --json > /dev/null || exit 1
$C labels import $W/labelled/seg/*.dcm --db $W/library.sqlite --json > /dev/null || exit 1
# As in the study's libraries: the labelled cohort's labels are its DICOM SEG and LIDC XML, the pool's its LIDC XML
# (read by the index); the pool's series with nodule outlines are its labelled patients.
$C series --db $W/library.sqlite --json | node -e "
const s=JSON.parse(require('fs').readFileSync(0)).filter(x=>x.modality==='CT');
const db=new (require('better-sqlite3'))('$W/library.sqlite',{readonly:true});
const withRois=new Set(db.prepare(\"SELECT DISTINCT i.series_ref FROM rois r JOIN findings f ON f.id = r.finding_ref JOIN instances i ON i.sop_uid = r.sop_uid WHERE f.kind IN ('nodule','small-nodule','segment')\").pluck().all());
const lab=s.filter(x=>x.patientId.split('-')[0]==='SYN$S').map(x=>x.id), pool=s.filter(x=>x.patientId.split('-')[0]==='SYN$((S + 1000))'&&withRois.has(x.id)).map(x=>x.id);
require('fs').writeFileSync('$W/labelled.txt', lab.join(',')); require('fs').writeFileSync('$W/pool.txt', pool.join(','));
console.log('$1', 'labelled', lab.length, 'pool', pool.length);"
