# Copyright (c) mmselfdet contributors. All rights reserved.
"""Selective search (Uijlings et al.) with OpenCV's ``cv2.ximgproc``.

numpy / OpenCV only, so it runs in the generator's worker processes; the
registered proposer that wraps it, beside the heat map, is
:class:`mmselfdet.models.proposers.SelectiveSearchProposer`. OpenCV's
contrib module comes from ``opencv-contrib-python-headless``, installed
after mmcv by ``tools/setup_env.sh``.
"""
from __future__ import annotations

import ctypes
import warnings
from typing import Optional, Tuple

import cv2
import numpy as np

from .format import rank_scores

__all__ = ['selective_search', 'SS_MODES']

#: OpenCV's two strategies.
SS_MODES = ('fast', 'quality')


def _ximgproc():
    seg = getattr(getattr(cv2, 'ximgproc', None), 'segmentation', None)
    if seg is None or not hasattr(seg,
                                  'createSelectiveSearchSegmentation'):
        raise ImportError(
            f'selective search needs cv2.ximgproc, which this OpenCV '
            f'({cv2.__version__}) lacks: install opencv-contrib-python-headless '
            'after mmcv (mmcv pulls in the plain opencv-python, which must not '
            'win); tools/setup_env.sh does this')
    return seg


_C_RAND = None


def _seed_c_rand(seed: int) -> bool:
    """Seed the C library's ``rand()``.

    OpenCV's selective search ranks regions with ``rand()``, so without this
    the order of its output depends on how many images the process handled
    before (and so on the number of workers).
    """
    global _C_RAND
    if _C_RAND is None:
        try:
            libc = ctypes.CDLL(None)
            _C_RAND = libc.srand
        except (OSError, AttributeError, TypeError):
            _C_RAND = False
            warnings.warn('cannot seed the C rand() used by OpenCV selective '
                          'search: proposal order may depend on the worker')
    if _C_RAND:
        _C_RAND(ctypes.c_uint(seed))
        return True
    return False


def selective_search(img_bgr: np.ndarray,
                     mode: str = 'fast',
                     max_side: Optional[int] = 500,
                     max_boxes: Optional[int] = None,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Selective search (Uijlings et al.) with OpenCV's ``cv2.ximgproc``.

    The image is resized so that its longer side is ``max_side`` (down or
    up; ``None`` keeps its size), searched, and the boxes are mapped back to
    the original pixels. OpenCV's own threading is left as it is: call
    ``cv2.setNumThreads(1)`` in worker processes.

    Args:
        img_bgr: uint8 (H, W, 3) BGR image (see
            :func:`mmselfdet.utils.image.to_bgr_uint8`).
        mode: ``'fast'`` or ``'quality'`` (OpenCV's two strategies).
        max_side: Longer side the search runs at. Defaults to 500.
        max_boxes: Keep the first ``max_boxes`` of the ranked output.
        seed: Seed of the random part of the ranking (see
            :func:`_seed_c_rand`); the same image and seed give the same
            output in any process.

    Returns:
        tuple[np.ndarray, np.ndarray]: float32 (N, 4) x1y1x2y2 boxes in
        original pixels, in selective search's ranking order, and their
        :func:`rank_scores`.

    Raises:
        ImportError: ``cv2.ximgproc`` is missing.
        ValueError: Bad mode or image.
    """
    seg = _ximgproc()
    if mode not in SS_MODES:
        raise ValueError(f"mode must be 'fast' or 'quality', got {mode!r}")
    if img_bgr.ndim != 3 or img_bgr.shape[2] != 3 or img_bgr.dtype != np.uint8:
        raise ValueError('selective_search needs a uint8 (H, W, 3) image, got '
                         f'{img_bgr.dtype} {img_bgr.shape}')
    h, w = img_bgr.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f'empty image {img_bgr.shape}')
    img = img_bgr
    sx = sy = 1.0
    if max_side:
        scale = float(max_side) / max(h, w)
        nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        if (nw, nh) != (w, h):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            img = cv2.resize(img_bgr, (nw, nh), interpolation=interp)
            sx, sy = nw / w, nh / h
    ss = seg.createSelectiveSearchSegmentation()
    ss.setBaseImage(np.ascontiguousarray(img))
    if mode == 'fast':
        ss.switchToSelectiveSearchFast()
    else:
        ss.switchToSelectiveSearchQuality()
    _seed_c_rand(seed)
    rects = ss.process()
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    if max_boxes is not None:
        rects = rects[:int(max_boxes)]
    boxes = np.empty_like(rects)
    boxes[:, 0] = rects[:, 0] / sx
    boxes[:, 1] = rects[:, 1] / sy
    boxes[:, 2] = (rects[:, 0] + rects[:, 2]) / sx
    boxes[:, 3] = (rects[:, 1] + rects[:, 3]) / sy
    np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
    return boxes.astype(np.float32), rank_scores(len(boxes))
