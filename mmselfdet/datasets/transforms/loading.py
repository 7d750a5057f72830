# Copyright (c) mmselfdet contributors. All rights reserved.
"""Image loading that survives the odd files of large unlabeled image sets.

Decoding is :mod:`mmselfdet.utils.image`, shared with the proposal
generators (``ImageLoadError`` is re-exported from there)."""
import logging
import os
import os.path as osp
import tempfile
import uuid
from typing import ClassVar, List, Optional, Tuple

import mmcv
import numpy as np
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmengine.logging import print_log

from mmselfdet.registry import TRANSFORMS
from mmselfdet.utils.image import (HIGH_DEPTH_MODES, ImageLoadError,
                                   decode_image)

from .geometric import compose_homography

@TRANSFORMS.register_module()
class LoadImageRobust(BaseTransform):
    """Load an image as uint8 3-channel BGR whatever its stored format.

    A drop-in replacement for ``LoadImageFromFile`` (mmcv) in pretraining
    pipelines over web-scale or user-collected folders. The file's bytes are
    read with :func:`mmengine.fileio.get` (so ``backend_args`` work as in
    mmcv) and decoded with OpenCV, then normalised:

    * **Decoding**: with ``exif_orientation=True`` (default) the flags are
      ``cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR``: 16-bit data and single
      channels are kept for the conversions below and the EXIF orientation
      is applied, as mmcv's default ``LoadImageFromFile`` (``'color'``)
      does; OpenCV drops an alpha channel in that mode. With
      ``exif_orientation=False`` the flag is ``cv2.IMREAD_UNCHANGED`` (the
      stored pixel grid, orientation tag ignored, alpha kept and then
      dropped below).
    * **Channels**: grayscale (2-D or 1 channel) is replicated to BGR;
      gray + alpha (2 channels) keeps the gray; BGRA (4 channels) keeps BGR.
      Alpha is **dropped, not composited**: transparent pixels show whatever
      colour the file stores under them (often black).
    * **Depth**: ``uint16`` is mapped to ``uint8`` by ``high_depth``:
      ``'scale'`` (default) is ``round(v / 257)`` (0 -> 0, 65535 -> 255,
      the same for every image, so relative brightness is kept);
      ``'minmax'`` stretches each image's own ``[min, max]`` to ``[0, 255]``
      (for e.g. 12-bit data stored in 16 bits, which ``'scale'`` renders
      nearly black). Float images (TIFF/EXR) are taken as ``[0, 1]`` when
      their maximum is <= 1, as ``[0, 255]`` otherwise, and clipped.
      Other dtypes are a decode error.
    * **Small images**: with ``min_size`` an image whose short side is below
      it is upscaled, aspect kept (the short side becomes exactly
      ``min_size``, the long side ``round(long * min_size / short)``), so a
      later fixed-size crop (e.g. 224) never needs more pixels than exist.
      The scaling is composed into ``homography_matrix`` (mmdet's
      ``H = H_this @ H_prev``) and applied to ``gt_bboxes`` if they are
      already loaded and to the raw ``instances[*]['bbox']``, so a
      ``LoadAnnotations`` placed after this transform reads boxes in the
      upscaled frame. ``ori_shape`` stays the decoded shape.

    Failures (missing file, read error, truncated or undecodable data,
    unsupported dtype) raise :class:`ImageLoadError` naming the file when
    ``on_error='raise'`` (default; ``'fail'`` is the same). With
    ``on_error='skip'`` the transform returns ``None``: mmengine's
    ``BaseDataset.__getitem__`` then draws another random index, up to the
    dataset's ``max_refetch`` times (a dataset in ``test_mode`` raises on
    ``None`` instead). Each skipped file is logged with a WARNING through
    :func:`mmengine.logging.print_log`, counted in a class-level counter
    (:meth:`skip_count`, per process) and appended as ``path<TAB>reason``
    to ``<report_dir>/<pid>.tsv``: ``report_dir`` is a temporary folder
    named when the transform is built (in the main process, before
    dataloader workers start) and made by the first skip, so the skips of
    every worker process are collected there and
    :meth:`skipped_files` (e.g. through
    :class:`~mmselfdet.engine.BadImageSummaryHook`) reads them all.

    Truncation: OpenCV 5 refuses a truncated JPEG, older versions decode the
    part that exists and fill the rest with gray, so with
    ``check_truncated=True`` (default) JPEG and PNG data are also checked for
    their end marker (see :func:`mmselfdet.utils.image.truncation_reason`).

    Required Keys:

    - img_path
    - homography_matrix (optional)
    - gt_bboxes (optional, rescaled with ``min_size``)
    - instances (optional, rescaled with ``min_size``)

    Modified Keys:

    - gt_bboxes (only with ``min_size``)
    - instances (only with ``min_size``)

    Added Keys:

    - img (np.uint8, (H, W, 3) BGR; float32 with ``to_float32``)
    - img_shape
    - ori_shape
    - homography_matrix (only when ``min_size`` upscaled the image)

    Args:
        on_error (str): ``'raise'`` or ``'skip'``. Defaults to 'raise'.
        min_size (int, optional): Smallest allowed short side; smaller
            images are upscaled. Defaults to None (never resize).
        high_depth (str): ``'scale'`` or ``'minmax'``, see above.
            Defaults to 'scale'.
        exif_orientation (bool): Apply the EXIF orientation tag. Defaults to
            True.
        check_truncated (bool): Check JPEG/PNG end markers. Defaults to True.
        interpolation (str): ``mmcv.imresize`` method of the ``min_size``
            upscaling. Defaults to 'bilinear'.
        to_float32 (bool): Return a float32 image. Defaults to False.
        backend_args (dict, optional): Arguments of the mmengine file
            backend. Defaults to None.
    """

    _skip_count: ClassVar[int] = 0

    def __init__(self,
                 on_error: str = 'raise',
                 min_size: Optional[int] = None,
                 high_depth: str = 'scale',
                 exif_orientation: bool = True,
                 check_truncated: bool = True,
                 interpolation: str = 'bilinear',
                 to_float32: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__()
        if on_error not in ('raise', 'fail', 'skip'):
            raise ValueError(
                f"on_error must be 'skip', 'fail' or 'raise', got "
                f'{on_error!r}')
        if min_size is not None and int(min_size) < 1:
            raise ValueError(f'min_size must be >= 1, got {min_size}')
        if high_depth not in HIGH_DEPTH_MODES:
            raise ValueError(
                f"high_depth must be 'scale' or 'minmax', got {high_depth!r}")
        if interpolation not in cv2_interp_codes:
            raise ValueError(
                f'interpolation must be one of {sorted(cv2_interp_codes)}, '
                f'got {interpolation!r}')
        self.on_error = 'raise' if on_error == 'fail' else on_error
        # chosen here (main process, before dataloader workers start) and
        # made by the first skip, in whichever process it happens
        self.report_dir: Optional[str] = None
        if self.on_error == 'skip':
            self.report_dir = osp.join(
                tempfile.gettempdir(), 'mmselfdet-bad-images-'
                f'{os.getpid()}-{uuid.uuid4().hex[:12]}')
        self.min_size = None if min_size is None else int(min_size)
        self.high_depth = high_depth
        self.exif_orientation = exif_orientation
        self.check_truncated = check_truncated
        self.interpolation = interpolation
        self.to_float32 = to_float32
        self.backend_args = None if backend_args is None else \
            dict(backend_args)

    # ------------------------------------------------------------ counter
    @classmethod
    def skip_count(cls) -> int:
        """Number of files skipped so far in this process."""
        return LoadImageRobust._skip_count

    @classmethod
    def reset_skip_count(cls) -> None:
        """Reset the per-process skip counter to 0."""
        LoadImageRobust._skip_count = 0

    def _report(self, path: str, reason: str) -> None:
        """Append a skipped file to this process's report file."""
        if self.report_dir is None:
            return
        reason = ' '.join(str(reason).split())
        os.makedirs(self.report_dir, exist_ok=True)
        with open(osp.join(self.report_dir, f'{os.getpid()}.tsv'), 'a',
                  encoding='utf-8') as f:
            f.write(f'{path}\t{reason}\n')

    def skipped_files(self) -> List[Tuple[str, str]]:
        """``(path, reason)`` of every skip of this transform so far, in all
        processes (dataloader workers included), one entry per skip."""
        out: List[Tuple[str, str]] = []
        if self.report_dir is None or not osp.isdir(self.report_dir):
            return out
        for name in sorted(os.listdir(self.report_dir)):
            with open(osp.join(self.report_dir, name),
                      encoding='utf-8') as f:
                for line in f:
                    if line.endswith('\n') and '\t' in line:
                        path, reason = line[:-1].split('\t', 1)
                        out.append((path, reason))
        return out

    # ------------------------------------------------------------ decoding
    def _read(self, path: str) -> np.ndarray:
        """Read and decode ``path`` with the shared decoder
        (:func:`mmselfdet.utils.image.decode_image`); raise
        :class:`ImageLoadError`."""
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except Exception as e:  # missing file, permission, network ...
            raise ImageLoadError(
                f'cannot read image file "{path}": '
                f'{type(e).__name__}: {e}') from e
        return decode_image(data, path, self.exif_orientation,
                            self.high_depth, self.check_truncated)

    # ------------------------------------------------------------ resizing
    def _upscale(self, results: dict, img: np.ndarray) -> np.ndarray:
        """Upscale ``img`` so its short side is >= ``min_size``."""
        h, w = img.shape[:2]
        short = min(h, w)
        if self.min_size is None or short >= self.min_size:
            return img
        ratio = self.min_size / short
        if h <= w:
            new_h, new_w = self.min_size, max(self.min_size, round(w * ratio))
        else:
            new_w, new_h = self.min_size, max(self.min_size, round(h * ratio))
        img = mmcv.imresize(img, (new_w, new_h),
                            interpolation=self.interpolation)
        sx, sy = new_w / w, new_h / h
        compose_homography(results, np.diag([sx, sy, 1.0]).astype(np.float32))
        if results.get('gt_bboxes', None) is not None:
            boxes = results['gt_bboxes']
            if hasattr(boxes, 'rescale_'):
                boxes.rescale_((sx, sy))
            else:
                results['gt_bboxes'] = (np.asarray(boxes, np.float32) *
                                        np.array([sx, sy, sx, sy], np.float32))
        for inst in results.get('instances', None) or []:
            if 'bbox' in inst:
                x1, y1, x2, y2 = inst['bbox']
                inst['bbox'] = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
        return img

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``.

        Args:
            results (dict): Result dict from the dataset.

        Returns:
            dict | None: The results with the image, or ``None`` for a bad
            file under ``on_error='skip'``.
        """
        path = results['img_path']
        try:
            img = self._read(path)
        except ImageLoadError as e:
            if self.on_error == 'raise':
                raise
            LoadImageRobust._skip_count += 1
            self._report(path, str(e))
            print_log(
                f'LoadImageRobust: skipped {e} ({LoadImageRobust._skip_count}'
                ' skipped so far in this process)',
                logger='current', level=logging.WARNING)
            return None
        ori_shape = img.shape[:2]
        img = self._upscale(results, img)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = ori_shape
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'on_error={self.on_error!r}, '
                f'min_size={self.min_size}, '
                f'high_depth={self.high_depth!r}, '
                f'exif_orientation={self.exif_orientation}, '
                f'check_truncated={self.check_truncated}, '
                f'interpolation={self.interpolation!r}, '
                f'to_float32={self.to_float32}, '
                f'backend_args={self.backend_args})')


__all__ = ['LoadImageRobust', 'ImageLoadError']
