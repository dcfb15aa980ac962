#!/usr/bin/env bash
# Blind baseline and expert on every scene preset (or only the presets named: measure_baselines.sh cluttered),
# 100 episodes per side on the fixed evaluation scenes of seed 0; writes results/<preset>/<controller>/report.json
# (read by scripts/results_tables.py).
set -euo pipefail
MV=${MOBILE_VLA:-mobile-vla}
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(classic varied cluttered)
for preset in "${presets[@]}"; do
  for baseline in expert blind; do
    "$MV" eval-sim --baseline "$baseline" --scenes "$preset" --episodes 200 --seed 0 --json \
      --out "results/$preset/$baseline" > /dev/null
  done
done
