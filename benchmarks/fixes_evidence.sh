#!/usr/bin/env bash
# The README's controls: can the embedded testbeds see a fix at all? Plain DARTS against the field's
# fixes (DARTS-, beta-DARTS, SDARTS-RS, PC-DARTS; each alone, SD off), SD-DARTS' default, and N=3
# random genotypes per seed, over 8 paired seeds with a 3-epoch proxy retrain of every cell; then
# each testbed's power (20 random genotypes, one of them at 5 retrain seeds).
#   bash benchmarks/fixes_evidence.sh [OUT_DIR] [PRESETS...]   (default ./fixes_evidence, collapse-demo collapse-s3)
# On 2 cores: about 60 minutes per testbed's comparison and 8 per power measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-fixes_evidence}")
shift || true
PRESETS=("${@:-collapse-demo collapse-s3}")
mkdir -p "$OUT"
SDDARTS=${SDDARTS:-.venv/bin/sddarts}
STORE=(--tracking-uri "sqlite:///$OUT/mlflow.db" --storage-path "$OUT/runs")
for preset in ${PRESETS[@]}; do
  start=$(date +%s)
  "$SDDARTS" compare --preset "$preset" --epochs 5 --sharpness-every 5 --seeds 8 --proxy-epochs 3 --random 3 \
    --name "fixes-$preset" \
    --variant dminus='--sd-weight 0 --aux-skip 1' \
    --variant beta='--sd-weight 0 --beta-decay 50' \
    --variant sdarts-rs='--sd-weight 0 --perturb random' \
    --variant pc='--sd-weight 0 --partial-channels 4' \
    --variant sd-default= \
    "${STORE[@]}" 2>&1 | tee "$OUT/fixes-$preset.log"
  echo "wall: $(( $(date +%s) - start )) s" | tee -a "$OUT/fixes-$preset.log"
  start=$(date +%s)
  "$SDDARTS" power --preset "$preset" --genotypes 20 --retrain-seeds 5 --proxy-epochs 3 --name "power-$preset" \
    "${STORE[@]}" 2>&1 | tee "$OUT/power-$preset.log"
  echo "wall: $(( $(date +%s) - start )) s" | tee -a "$OUT/power-$preset.log"
done
