#!/usr/bin/env bash
# Copy a finished grounding-ablation run's reports into results/ for scripts/results_tables.py:
#   scripts/copy_ablation_reports.sh outputs/ablation_varied varied
set -euo pipefail
src=$1 preset=$2
cp "$src/ablation.json" "results/ablation_$preset.json"
for report in "$src"/runs/*/seed*/closed_loop/report.json; do
  run=$(basename "$(dirname "$(dirname "$(dirname "$report")")")")-$(basename "$(dirname "$(dirname "$report")")")
  mkdir -p "results/$preset/ablation-$run"
  cp "$report" "results/$preset/ablation-$run/report.json"
done
