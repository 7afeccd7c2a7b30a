#!/usr/bin/env bash
# The baseline's Python dependencies (requirements.txt, from PyPI) in a venv
# of its own, bench/.venv, made once; prints the venv's python.
#   bench/baseline/venv.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c 'import aiortc, aiohttp, numpy' 2>/dev/null; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet --upgrade pip >&2
  bench/.venv/bin/pip install --quiet -r bench/baseline/requirements.txt >&2
fi
echo "$PWD/bench/.venv/bin/python"
