#!/usr/bin/env bash
# Static security checks of infra/ with Checkov (Bicep framework), in its own venv .venv-checkov because
# checkov pins pycep-parser==0.5.1 while the test venv uses 0.7.1. Exits non-zero on any failed check.
# Skipped checks carry their reason inline in the Bicep (`// checkov:skip=CKV_AZURE_xx: reason`), inside the
# resource they apply to; the run prints how many were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV=.venv-checkov
STAMP="$VENV/.stamp-checkov"

if [[ ! -x "$VENV/bin/checkov" || requirements-checkov.txt -nt "$STAMP" ]]; then
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
  touch "$STAMP"
fi

# --skip-download: no Bridgecrew/Prisma platform calls (offline, and no API key).
# Checkov exits 1 when any check fails; `set -e` passes that on.
exec "$VENV/bin/checkov" -d infra --framework bicep --skip-download --compact --quiet "$@"
