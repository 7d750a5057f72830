#!/usr/bin/env bash
# The test command: sets up .venv if needed (tools/setup_env.sh), then runs
# the whole suite on the CPU. Extra arguments go to pytest.
#
#   bash tools/run_tests.sh                   # upstream stack, .venv (CI)
#   bash tools/run_tests.sh --stack onedl     # the OneDL fork, .venv-onedl
#
# `--stack onedl` is opt-in (CI stays on the upstream stack); its last
# recorded result is in docs/compatibility.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK=upstream
case "${1:-}" in
  --stack) STACK="${2:?--stack needs upstream or onedl}"; shift 2 ;;
  --stack=*) STACK="${1#--stack=}"; shift ;;
esac
case "$STACK" in
  upstream) VENV="${MMSELFDET_VENV:-$ROOT/.venv}" ;;
  onedl) VENV="${MMSELFDET_VENV:-$ROOT/.venv-onedl}" ;;
  *) echo "run_tests.sh: --stack must be upstream or onedl, not $STACK" >&2; exit 2 ;;
esac
MMSELFDET_VENV="$VENV" bash "$ROOT/tools/setup_env.sh" --stack "$STACK"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest tests "$@"
