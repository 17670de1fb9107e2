#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv with everything TripSage and its tests need.
# Re-runs are quick: pip runs again only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: TripSage needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.tripsage-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing TripSage and its dependencies into .venv (first run takes a few minutes)..." >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    # torch comes from the CPU wheel pinned in pyproject's "ml" extra.
    .venv/bin/python -m pip install --quiet -e '.[dev,ml]' >&2
    echo "$want" > "$stamp"
fi
