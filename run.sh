#!/usr/bin/env bash
# Quick start: installs into .venv on first use, then runs web + worker + embedded Redis.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh requirements.lock
exec .venv/bin/python -m ppt_web.launcher "$@"
