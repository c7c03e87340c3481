#!/bin/sh
# One arm of the supervised-ceiling study (docs/evidence.md, "The supervised ceiling"); writes bench/.work/evidence/ceiling/NAME.json.
# usage: bench/supervised-ceiling.sh NAME TASK SEED EXTRA_SERIES(none|pool-92|pool-all) ES(off|on) [extra args]
# EXTRA names bench/.work/evidence/ceiling/EXTRA.txt, comma-separated series ids added with --train-series (the JSON's config.trainSeriesIds);
# env: DB (library), LABFILE (a file there of the labelled cohort's series ids; default 1-120), SPLITSEED (classification; default 2),
#      MINAREA (classification: --min-area, the smallest nodule cross-section of a positive slice in stored pixels; default 30).
cd "$(dirname "$0")/.."
W=bench/.work/evidence/ceiling
DB=${DB:-bench/.work/evidence/label-efficiency-2-L120/library.sqlite}
NAME=$1; TASK=$2; SEED=$3; EXTRA=$4; ES=$5; shift 5
[ -f $W/$NAME.json ] && grep -q '"results"' $W/$NAME.json && { echo "skip $NAME"; exit 0; }
LAB=$(seq -s, 1 120); [ -n "$LABFILE" ] && LAB=$(cat $W/$LABFILE)
TRAIN=""; [ "$EXTRA" != none ] && TRAIN="--train-series $(cat $W/$EXTRA.txt)"
if [ "$TASK" = classification ]; then
  COMMON="--task classification --label nodule --min-area ${MINAREA:-30} --preset tiny --size 64 --batch 8 --split 0.5,0.15,0.35 --split-seed ${SPLITSEED:-2} --seed $SEED"
  OFF="--steps 600 --eval-every 600"
else
  COMMON="--task segmentation --label nodule --preset tiny --size 64 --batch 8 --lr 0.003 --split 0.5,0.15,0.35 --split-seed 1 --seed $SEED"
  OFF="--steps 400 --eval-every 400"
fi
ON="--steps 4000 --eval-every 100 --early-stop 8"
[ "$ES" = on ] && LEN=$ON || LEN=$OFF
rm -rf $W/$NAME
echo "$DB" > $W/$NAME.lib
start=$(date +%s)
nice -n 19 node bin/ctssl.mjs finetune --db $DB $COMMON $LEN --series $LAB $TRAIN --window-level -600 --window-width 1500 --backend wasm "$@" --out $W/$NAME --json > $W/$NAME.json 2> $W/$NAME.err
rc=$?
end=$(date +%s)
echo "$NAME rc=$rc seconds=$((end-start)) load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a $W/timings.txt
