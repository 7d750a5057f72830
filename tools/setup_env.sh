#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
#
# Idempotent: a second run checks a stamp and returns in seconds.
# Order matters and is fixed here (see ../shared/docs/ENV.md):
#   1. torch (CPU build) + build tools (setuptools<81 keeps pkg_resources,
#      which both the mmcv build and mmengine's `mmdet::` config bases need)
#   2. mmcv 2.1.0 with ops: a prebuilt wheel from $MMSELFDET_WHEELHOUSE or
#      ../shared/wheels/cpu-cp311 when present, otherwise built from source
#      (~15 min on 2 cores)
#   3. mmengine, mmdet, the project in editable mode with test extras
#   4. opencv-contrib-python-headless last, so `cv2.ximgproc` (selective
#      search) wins over the plain opencv-python that mmcv pulls in.
# torchvision is never installed: PyPI's build breaks `import mmengine` beside
# the CPU torch ("operator torchvision::nms does not exist").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMSELFDET_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
TORCH_SPEC="${MMSELFDET_TORCH:-torch==2.13.0}"
OPENCV_SPEC="opencv-contrib-python-headless==5.0.0.93"

log() { printf '[setup_env] %s\n' "$*" >&2; }

# The stamp covers everything that decides what gets installed.
STAMP_SRC="$(cat "$ROOT/tools/setup_env.sh" "$ROOT/pyproject.toml" "$ROOT/setup.cfg" 2>/dev/null; echo "$TORCH_SPEC")"
STAMP_HASH="$(printf '%s' "$STAMP_SRC" | sha256sum | cut -c1-16)"
STAMP="$VENV/.mmselfdet-setup-$STAMP_HASH"

if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import mmselfdet, mmdet, mmcv.ops" >/dev/null 2>&1; then
  log "environment up to date ($VENV)"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

log "step 1/4: torch + build tools"
"${PIP[@]}" "$TORCH_SPEC" "setuptools>=77,<81" numpy ninja wheel

log "step 2/4: mmcv 2.1.0 with ops"
if "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" >/dev/null 2>&1; then
  log "mmcv 2.1.0 already present"
else
  WHEELHOUSE="${MMSELFDET_WHEELHOUSE:-}"
  if [ -z "$WHEELHOUSE" ] && [ -d "$ROOT/../shared/wheels/cpu-cp311" ]; then
    WHEELHOUSE="$ROOT/../shared/wheels/cpu-cp311"
  fi
  if [ -n "$WHEELHOUSE" ] && ls "$WHEELHOUSE"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    log "installing mmcv from wheel cache $WHEELHOUSE"
    "${PIP[@]}" --find-links "$WHEELHOUSE" "mmcv==2.1.0"
  else
    log "no mmcv wheel cache: building mmcv 2.1.0 from source (about 15 minutes on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" --no-build-isolation "mmcv==2.1.0"
  fi
fi

log "step 3/4: mmengine, mmdet and mmselfdet (editable, test extras)"
"${PIP[@]}" -e "$ROOT[tests]"

log "step 4/4: $OPENCV_SPEC (selective search)"
"${PIP[@]}" --force-reinstall --no-deps "$OPENCV_SPEC"

if "$VENV/bin/python" -m pip show torchvision >/dev/null 2>&1; then
  log "removing torchvision (it breaks 'import mmengine' beside the CPU torch)"
  "$VENV/bin/python" -m pip uninstall -y -q torchvision
fi

"$VENV/bin/python" - <<'PY'
import cv2, mmcv, mmcv.ops, mmdet, mmengine, torch
import mmselfdet
assert hasattr(cv2, 'ximgproc'), 'cv2.ximgproc missing: opencv-contrib-python-headless was overwritten'
print(f'[setup_env] ok: torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, '
      f'mmselfdet {mmselfdet.__version__}, cv2 {cv2.__version__}')
PY
rm -f "$VENV"/.mmselfdet-setup-*
touch "$STAMP"
