#!/usr/bin/env bash
# The main job: sets up .venv if needed, then the toy benchmark's `cpu`
# preset (toy data -> MoCo v2 and InsLoc pretraining -> export -> probe ->
# RetinaNet fine-tuning on 10 % of the toy labels, 3 seeds, beside random
# init -> table). Extra arguments go to `python -m mmselfdet.quickstart`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m mmselfdet.quickstart "$@"
