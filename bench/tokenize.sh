#!/usr/bin/env bash
# Tokenizer figures for BENCHMARKS.md: ML-100k, ML-1M, Amazon Instruments (and Games for timing).
# Needs SASRec runs (item_embeddings.npz). Usage: bench/tokenize.sh [SASREC_ML1M_RUN] [SASREC_INSTRUMENTS_RUN]
set -euo pipefail
A=.venv/bin/alignrec
ML1M=${1:-runs/ml-1m}
INSTR=${2:-runs/instruments}

# ML-100k: data + SASRec (about 3 minutes), then the tokenizer
$A run --config default --out runs/ml-100k
/usr/bin/time -f "%e s wall" $A tokenize --data runs/ml-100k/data --sasrec runs/ml-100k/sasrec \
    --out runs/ml-100k/tokens --config default
# ML-1M: both features, RQ-KMeans (default) and RQ-VAE
/usr/bin/time -f "%e s wall" $A tokenize --data "$ML1M/data" --sasrec "$ML1M/sasrec" --out runs/ml-1m/tokens --config ml-1m
/usr/bin/time -f "%e s wall" $A tokenize --data "$ML1M/data" --sasrec "$ML1M/sasrec" --out runs/ml-1m/tokens-rqvae \
    --config ml-1m --set tokenize.quantizer=rqvae
# Amazon Instruments: ID-only, cf features
/usr/bin/time -f "%e s wall" $A tokenize --data "$INSTR/data" --sasrec "$INSTR/sasrec" --out runs/instruments/tokens \
    --config instruments
