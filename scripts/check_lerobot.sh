#!/usr/bin/env bash
# Load a `mobile-vla data export --format lerobot` dataset with LeRobot itself (LeRobotDataset).
#
#   scripts/check_lerobot.sh DATASET_DIR
#
# LeRobot 0.4.x writes and reads the v3.0 layout but pins torch < 2.11, so it gets its own virtual
# environment (LEROBOT_VENV, default .lerobot-venv; reused when present). From PyPI alone that
# torch is the CUDA build: the first run installs about 8 GB. CI does not run this.
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:?usage: scripts/check_lerobot.sh DATASET_DIR}
VENV=${LEROBOT_VENV:-.lerobot-venv}
PY=${PYTHON:-python3}
LEROBOT_SPEC=${LEROBOT_SPEC:-lerobot==0.4.*}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import lerobot" >/dev/null 2>&1; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "$LEROBOT_SPEC"
fi
"$VENV/bin/python" -c "import lerobot, torch; print('lerobot', lerobot.__version__, 'torch', torch.__version__)"
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "$VENV/bin/python" scripts/check_lerobot.py "$DATASET"
