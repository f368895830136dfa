#!/usr/bin/env bash
# Quick start: installs into .venv on first use, then runs web + worker + embedded Redis.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh requirements.lock
# Letters are made into PDFs with WeasyPrint, which loads Pango (a system library) when imported.
if ! err="$(.venv/bin/python -c "import weasyprint" 2>&1)"; then
  echo "ppt: WeasyPrint does not load (${err##*$'\n'})." >&2
  echo "ppt: install its system libraries and the letters' font: sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-dejavu-extra" >&2
  exit 1
fi
exec .venv/bin/python -m ppt_web.launcher "$@"
