#!/usr/bin/env bash
# Create (or refresh) a virtual environment for mmselfdet.
#
#   bash tools/setup_env.sh                  # upstream stack in .venv (the default)
#   bash tools/setup_env.sh --stack onedl    # OneDL fork in .venv-onedl
#
# Idempotent: a second run checks a stamp and returns in seconds.
# Order matters and is fixed here (see ../shared/docs/ENV.md):
#   1. torch (CPU build) + build tools (setuptools<82 keeps pkg_resources,
#      which both the mmcv build and mmengine's `mmdet::` config bases need)
#   2. mmcv 2.1.0 with ops: a prebuilt wheel from $MMSELFDET_WHEELHOUSE or
#      ../shared/wheels/cpu-cp3XX when present, otherwise built from source
#      (~15 min on 2 cores; a progress line every minute)
#   3. the stack: upstream mmengine + mmdet 3.3 (the `upstream` extra), or
#      onedl-mmengine + onedl-mmdetection ($MMSELFDET_ONEDL_SPECS; mmcv is
#      installed without its dependencies there, since its `mmengine`
#      requirement would pull upstream mmengine over the fork's files);
#      then the project in editable mode with test extras
#   4. opencv-contrib-python-headless last, so `cv2.ximgproc` (selective
#      search) wins over the plain opencv-python that mmcv pulls in.
# torchvision is never installed: PyPI's build breaks `import mmengine` beside
# the CPU torch ("operator torchvision::nms does not exist").
#
# Environment: PYTHON (interpreter, default python3.11; 3.11 and 3.12 are
# accepted), MMSELFDET_VENV, MMSELFDET_TORCH (default torch==2.13.0),
# MMSELFDET_WHEELHOUSE, MMSELFDET_ALLOW_TORCH_DOWNLOAD=1 (see step 1),
# MAX_JOBS (mmcv build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${MMSELFDET_STACK:-upstream}"
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK="${2:?--stack needs upstream or onedl}"; shift 2 ;;
    --stack=*) STACK="${1#--stack=}"; shift ;;
    -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf '[setup_env] unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
  esac
done
case "$STACK" in
  upstream) DEFAULT_VENV="$ROOT/.venv" ;;
  onedl) DEFAULT_VENV="$ROOT/.venv-onedl" ;;
  *) printf '[setup_env] --stack must be upstream or onedl, not %s\n' "$STACK" >&2; exit 2 ;;
esac
VENV="${MMSELFDET_VENV:-$DEFAULT_VENV}"
PY="${PYTHON:-python3.11}"
TORCH_SPEC="${MMSELFDET_TORCH:-torch==2.13.0}"
OPENCV_SPEC="opencv-contrib-python-headless==5.0.0.93"
ONEDL_SPECS="${MMSELFDET_ONEDL_SPECS:-onedl-mmengine==0.10.12 onedl-mmdetection==3.5.1}"
SETUPTOOLS_SPEC="setuptools>=77,<82"
T0=$SECONDS

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { local s=$((SECONDS - ${1:-$T0})); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# The stamp covers everything that decides what gets installed.
STAMP_SRC="$(cat "$ROOT/tools/setup_env.sh" "$ROOT/pyproject.toml" "$ROOT/setup.cfg" 2>/dev/null; echo "$TORCH_SPEC $STACK $ONEDL_SPECS")"
STAMP_HASH="$(printf '%s' "$STAMP_SRC" | sha256sum | cut -c1-16)"
STAMP="$VENV/.mmselfdet-setup-$STAMP_HASH"

if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import mmselfdet, mmdet, mmcv.ops" >/dev/null 2>&1; then
  log "environment up to date ($VENV, $STACK stack)"
  exit 0
fi

# ----------------------------------------------------------------- interpreter
if [ -x "$VENV/bin/python" ]; then
  PYVER="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
else
  command -v "$PY" >/dev/null 2>&1 || die "no interpreter '$PY'; set PYTHON=/path/to/python3.11 (or 3.12)"
  PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
    || die "'$PY' does not run (a pyenv shim without that version selected?); set PYTHON to the interpreter's full path"
fi
case "$PYVER" in
  3.11|3.12) ;;
  *) die "Python $PYVER: this script supports 3.11 and 3.12 (set PYTHON)" ;;
esac
CPTAG="cp${PYVER/./}"
log "stack: $STACK, Python $PYVER, venv $VENV"

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check -q)

# ------------------------------------------------------------ step 1: torch
# Where would pip take torch from? A wheel on this machine's disk (find-links
# or a file:// index) installs in a minute; otherwise pip downloads it, and
# PyPI's Linux wheels are the CUDA builds (several GB with the nvidia libs).
# For Python 3.12 that download is refused unless allowed explicitly.
torch_source() {
  local report
  report="$(mktemp)"
  if ! "$VPY" -m pip install --disable-pip-version-check -q --dry-run --no-deps \
       --ignore-installed --report "$report" "$TORCH_SPEC" >/dev/null 2>&1; then
    rm -f "$report"; echo "none"; return
  fi
  "$VPY" -c 'import json, sys, urllib.parse
items = json.load(open(sys.argv[1])).get("install", [])
print(urllib.parse.unquote(items[0]["download_info"]["url"]) if items else "none")' "$report"
  rm -f "$report"
}
if "$VPY" -c "import torch" >/dev/null 2>&1; then
  log "step 1/4: torch $("$VPY" -c 'import torch; print(torch.__version__)') already installed; build tools"
  "${PIP[@]}" "$SETUPTOOLS_SPEC" numpy ninja wheel
else
  SRC="$(torch_source)"
  case "$SRC" in
    file://*) log "step 1/4: $TORCH_SPEC from this machine's disk (${SRC#file://}) + build tools" ;;
    none) die "no wheel matching '$TORCH_SPEC' for Python $PYVER on disk or on the configured indexes; set MMSELFDET_TORCH to a spec that exists (e.g. the torch your cluster uses) or use Python 3.11" ;;
    *)
      if [ "$PYVER" != "3.11" ] && [ "${MMSELFDET_ALLOW_TORCH_DOWNLOAD:-0}" != "1" ]; then
        die "no '$TORCH_SPEC' wheel for Python $PYVER on this machine's disk; pip would download $SRC (from PyPI that is the CUDA build, several GB). Put a cp${PYVER/./} torch wheel in pip's find-links, set MMSELFDET_TORCH to one that is on disk, set MMSELFDET_ALLOW_TORCH_DOWNLOAD=1 to download it anyway, or use Python 3.11 (PYTHON=python3.11)"
      fi
      log "step 1/4: $TORCH_SPEC is not on this machine's disk: downloading $SRC (this can take a while) + build tools" ;;
  esac
  "${PIP[@]}" "$TORCH_SPEC" "$SETUPTOOLS_SPEC" numpy ninja wheel
fi

# ----------------------------------------------------------- step 2: mmcv
# A long command with a progress line every minute (elapsed time and, for
# the mmcv build, the number of compiled objects so far).
with_heartbeat() {
  local what="$1" dir="$2"; shift 2
  local start=$SECONDS
  "$@" &
  local pid=$! rc=0 next=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if [ $SECONDS -ge $next ] && kill -0 "$pid" 2>/dev/null; then
      local objs
      objs="$(find "$dir" -name '*.o' 2>/dev/null | wc -l)"
      log "  ... $what: $(elapsed "$start") elapsed, $objs C++ objects compiled so far"
      next=$((next + 60))
    fi
  done
  wait "$pid" || rc=$?
  return $rc
}

MMCV_NODEPS=()
[ "$STACK" = onedl ] && MMCV_NODEPS=(--no-deps)
if "$VPY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" >/dev/null 2>&1; then
  log "step 2/4: mmcv 2.1.0 with ops already present"
else
  WHEELHOUSE="${MMSELFDET_WHEELHOUSE:-}"
  if [ -z "$WHEELHOUSE" ] && [ -d "$ROOT/../shared/wheels/cpu-$CPTAG" ]; then
    WHEELHOUSE="$ROOT/../shared/wheels/cpu-$CPTAG"
  fi
  if [ -n "$WHEELHOUSE" ] && ls "$WHEELHOUSE"/mmcv-2.1.0-"$CPTAG"-*.whl >/dev/null 2>&1; then
    log "step 2/4: mmcv 2.1.0 from the wheel cache $WHEELHOUSE"
    "${PIP[@]}" ${MMCV_NODEPS[@]+"${MMCV_NODEPS[@]}"} --find-links "$WHEELHOUSE" "mmcv==2.1.0"
  else
    BUILD_TMP="$(mktemp -d)"
    log "step 2/4: no mmcv 2.1.0 $CPTAG wheel in a cache: building mmcv 2.1.0 with ops from source"
    log "  (about 15 minutes on 2 cores, MAX_JOBS=${MAX_JOBS:-$(nproc)}; a progress line every minute; build dir $BUILD_TMP)"
    TMPDIR="$BUILD_TMP" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      with_heartbeat "building mmcv" "$BUILD_TMP" \
      "${PIP[@]}" ${MMCV_NODEPS[@]+"${MMCV_NODEPS[@]}"} --no-build-isolation "mmcv==2.1.0"
    rm -rf "$BUILD_TMP"
    log "  mmcv built"
  fi
fi

# ---------------------------------------------------------- step 3: stack
if [ "$STACK" = upstream ]; then
  log "step 3/4: mmengine, mmdet 3.3 and mmselfdet (editable, extras: tests, upstream)"
  "${PIP[@]}" -e "$ROOT[tests,upstream]"
else
  log "step 3/4: $ONEDL_SPECS, mmcv's other dependencies, mmselfdet (editable, extras: tests)"
  # mmcv's requirements minus mmengine (the fork provides the import name)
  # shellcheck disable=SC2086
  "${PIP[@]}" $ONEDL_SPECS addict packaging Pillow pyyaml yapf opencv-python
  "${PIP[@]}" -e "$ROOT[tests]"
fi

log "step 4/4: $OPENCV_SPEC (selective search)"
"${PIP[@]}" --force-reinstall --no-deps "$OPENCV_SPEC"

if "$VPY" -m pip show torchvision >/dev/null 2>&1; then
  log "removing torchvision (it breaks 'import mmengine' beside the CPU torch)"
  "$VPY" -m pip uninstall -y -q torchvision
fi

"$VPY" - "$STACK" <<'PY'
import sys
import cv2, mmcv, mmcv.ops, mmdet, mmengine, torch
import mmselfdet
from mmselfdet.version import check_stack, detect_stack, stack_name
assert hasattr(cv2, 'ximgproc'), 'cv2.ximgproc missing: opencv-contrib-python-headless was overwritten'
stack = detect_stack()
assert stack_name(stack) == sys.argv[1], (
    f'asked for the {sys.argv[1]} stack, found {stack_name(stack)}: {stack}')
for w in check_stack(stack):
    print(f'[setup_env] warning: {w}', file=sys.stderr)
print(f'[setup_env] ok ({sys.argv[1]} stack): torch {torch.__version__}, '
      f'mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}, mmselfdet {mmselfdet.__version__}, '
      f'cv2 {cv2.__version__}', file=sys.stderr)
PY
rm -f "$VENV"/.mmselfdet-setup-*
touch "$STAMP"
log "done in $(elapsed)"
