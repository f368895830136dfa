# Sourced by run.sh and test.sh: make .venv and install the given lock file and the package itself
# (editable) when the lock or pyproject.toml changed since the last install (a stamp file holds their hash).
# The lock files pin what CI tested; pyproject.toml holds the ranges (see README, "Dependencies").
lock="$1"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "ppt: Python 3.11 or newer is needed (found: $("$python" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-$(basename "$lock" .lock)"
want="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ppt: installing $lock into .venv ..." >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$lock"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi
