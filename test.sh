#!/usr/bin/env bash
# Runs every test (unit, integration with a real Redis and worker, browser). Args go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh requirements-dev.lock
exec .venv/bin/python -m pytest "$@"
