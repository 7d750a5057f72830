#!/usr/bin/env bash
# The main job: sets up .venv if needed, then toy data -> MoCo v2
# pretraining -> export -> RetinaNet fine-tuning (pretrained and random
# init) -> AP table. Extra arguments go to `python -m mmselfdet.quickstart`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m mmselfdet.quickstart "$@"
