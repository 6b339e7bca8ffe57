#!/usr/bin/env bash
# The README's SD-DARTS evidence: DARTS against six SD-DARTS variants over 8 paired seeds, with a
# 3-epoch proxy retrain of every derived cell, on two embedded testbeds (NAS-Bench-201's cell and
# RobustDARTS' S3, both on digits), each search 5 epochs with the eigenvalue measured at the end.
# About 58 minutes (collapse-demo) and 56 minutes (collapse-s3) on a 2-core machine.
#   bash benchmarks/sd_variants.sh [OUT_DIR]      (default ./sd_variants; the logs and an MLflow store)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-sd_variants}")
mkdir -p "$OUT"
SDDARTS=${SDDARTS:-.venv/bin/sddarts}
for preset in collapse-demo collapse-s3; do
  "$SDDARTS" compare --preset "$preset" --epochs 5 --sharpness-every 5 --seeds 8 --proxy-epochs 3 --name "variants-$preset" \
    --variant default= \
    --variant weights='--distill-on weights' \
    --variant arch='--distill-on arch' \
    --variant last-step='--teacher-interval 1 --vote-count 1' \
    --variant hard='--voting hard' \
    --variant sd3='--sd-weight 3' \
    --tracking-uri "sqlite:///$OUT/mlflow.db" --storage-path "$OUT/runs" 2>&1 | tee "$OUT/$preset.log"
done
