#!/usr/bin/env bash
# Create or reuse .venv inside the checkout and install what Mobile VLA needs.
# Idempotent: a second run with unchanged pyproject.toml does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MOBILE_VLA_VENV:-.venv}
# pip's notes about this machine's local mirrors are noise for the user.
quiet() { "$@" 2>&1 | { grep -v -e "^WARNING: Location" -e "^\[notice\]" || true; }; return "${PIPESTATUS[0]}"; }
PY=${PYTHON:-python3}

# Debian packages for CPU (EGL/Mesa) rendering of the MuJoCo simulator.
need_debs=()
for pkg in libegl1 libegl-mesa0 libgl1; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_debs+=("$pkg")
done
if [ ${#need_debs[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages: ${need_debs[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}" >/dev/null
    else
        echo "setup: warning: missing ${need_debs[*]} (simulator rendering needs them); install with apt-get" >&2
    fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
quiet "$VENV/bin/python" -m pip install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        echo "setup: GPU found; installing torch from the default index (CUDA build)"
        quiet "$VENV/bin/pip" install -q "torch>=2.3,<2.15"
    else
        echo "setup: no GPU; installing the CPU build torch==${TORCH_VERSION:-2.13.0}"
        quiet "$VENV/bin/pip" install -q "torch==${TORCH_VERSION:-2.13.0}"
    fi
fi
echo "setup: installing mobile-vla and its dependencies into $VENV"
quiet "$VENV/bin/pip" install -q -e ".[dev,ecosystem]"
"$VENV/bin/python" -c "import mobile_vla" >/dev/null
echo "$want" > "$stamp"
