# Copyright (c) mmselfdet contributors. All rights reserved.
"""The one image decoder: file bytes -> uint8 3-channel BGR.

Shared by :class:`~mmselfdet.datasets.transforms.LoadImageRobust` (training)
and the proposal generators (:func:`read_image_bgr`), so a proposal file's
boxes are in the frame training decodes the image in.
"""
from typing import Optional

import cv2
import numpy as np

_JPEG_SOI = b'\xff\xd8'
_JPEG_SOS = b'\xff\xda'
_JPEG_EOI = b'\xff\xd9'
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'IEND'
HIGH_DEPTH_MODES = ('scale', 'minmax')


class ImageLoadError(OSError, ValueError):
    """An image file that is missing, unreadable, truncated or undecodable.

    The message always names the file. An :class:`OSError` (a file that
    cannot be used) and a :class:`ValueError` (bad data), so callers that
    catch either keep working.
    """


def truncation_reason(data: bytes) -> Optional[str]:
    """Why ``data`` (a JPEG or PNG) looks cut short, or ``None``.

    JPEG: no end-of-image marker after the last start-of-scan marker (inside
    entropy-coded data ``0xFF`` is byte-stuffed, so neither marker can occur
    there; an EXIF thumbnail's markers come before the main scan). PNG: no
    ``IEND`` chunk. Other formats are not checked.
    """
    if data.startswith(_JPEG_SOI):
        last_sos = data.rfind(_JPEG_SOS)
        if data.rfind(_JPEG_EOI) <= last_sos:
            return 'truncated JPEG (no end-of-image marker after the scan)'
    elif data.startswith(_PNG_MAGIC):
        if data.rfind(_PNG_IEND, len(_PNG_MAGIC)) < 0:
            return 'truncated PNG (no IEND chunk)'
    return None


def to_bgr_uint8(img: np.ndarray, high_depth: str = 'scale',
                 path: Optional[str] = None) -> np.ndarray:
    """Convert a decoded image of any common layout to uint8 3-channel BGR.

    * depth: ``uint16`` -> ``uint8`` by ``high_depth``: ``'scale'`` is
      ``round(v / 257)`` (65535 -> 255, the same for every image),
      ``'minmax'`` stretches the image's own ``[min, max]`` to ``[0, 255]``;
      float is taken as ``[0, 1]`` if its maximum is <= 1 and ``[0, 255]``
      otherwise, clipped;
    * channels: gray (2-D or 1 channel) is replicated to BGR, gray + alpha
      keeps the gray, BGRA keeps BGR (alpha dropped, not composited, as
      ``LoadImageFromFile`` does).

    Args:
        img: Decoded image (H, W) or (H, W, C).
        high_depth: ``'scale'`` or ``'minmax'``. Defaults to 'scale'.
        path: The file, named in errors.

    Returns:
        np.ndarray: uint8 (H, W, 3), C-contiguous.

    Raises:
        ImageLoadError: Unsupported dtype or channel count.
    """
    name = f'image file "{path}"' if path else 'image'
    if img.dtype == np.uint16:
        if high_depth == 'scale':
            f = np.round(img.astype(np.float32) / 257.0)
        else:
            lo, hi = float(img.min()), float(img.max())
            f = (img.astype(np.float32) - lo) * (255.0 / (hi - lo)
                                                 if hi > lo else 0.0)
        img = np.clip(f, 0, 255).astype(np.uint8)
    elif np.issubdtype(img.dtype, np.floating):
        f = np.nan_to_num(img.astype(np.float32))
        if f.size and float(f.max()) <= 1.0:
            f = f * 255.0
        img = np.clip(np.round(f), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageLoadError(f'{name} has unsupported pixel type {img.dtype}')
    if img.ndim == 2:
        img = img[..., None]  # (H, W, 1)
    channels = img.shape[2] if img.ndim == 3 else -1
    if channels in (1, 2):  # gray, gray + alpha
        img = cv2.cvtColor(np.ascontiguousarray(img[..., 0]),
                           cv2.COLOR_GRAY2BGR)
    elif channels == 4:  # BGRA: drop alpha
        img = img[..., :3]
    elif channels != 3:
        raise ImageLoadError(f'{name} has unsupported shape {img.shape}')
    return np.ascontiguousarray(img)


def decode_image(data: bytes,
                 path: str = '<bytes>',
                 exif_orientation: bool = True,
                 high_depth: str = 'scale',
                 check_truncated: bool = True) -> np.ndarray:
    """Decode an image file's bytes into uint8 BGR.

    With ``exif_orientation=True`` the flags are ``cv2.IMREAD_ANYDEPTH |
    cv2.IMREAD_ANYCOLOR``: 16-bit data and single channels survive for
    :func:`to_bgr_uint8`, and the EXIF orientation is applied as mmcv's
    ``LoadImageFromFile`` does (plain ``cv2.IMREAD_UNCHANGED`` ignores it,
    which would put the boxes of a rotated JPEG in the wrong frame); OpenCV
    drops alpha in this mode. With ``False`` the flag is
    ``cv2.IMREAD_UNCHANGED`` (the stored grid, alpha dropped afterwards).

    Args:
        data: The file's bytes.
        path: The file, named in errors.
        exif_orientation: Apply the EXIF orientation. Defaults to True.
        high_depth: See :func:`to_bgr_uint8`. Defaults to 'scale'.
        check_truncated: Refuse JPEG / PNG data without its end marker
            (:func:`truncation_reason`; OpenCV < 5 decodes the part that
            exists and fills the rest with gray). Defaults to True.

    Returns:
        np.ndarray: uint8 (H, W, 3) BGR.

    Raises:
        ImageLoadError: Empty, truncated or undecodable data, unsupported
            dtype or channels; the message names the file.
    """
    if high_depth not in HIGH_DEPTH_MODES:
        raise ValueError(f'high_depth must be one of {HIGH_DEPTH_MODES}, got '
                         f'{high_depth!r}')
    if not data:
        raise ImageLoadError(f'image file "{path}" is empty')
    if check_truncated:
        reason = truncation_reason(bytes(data))
        if reason is not None:
            raise ImageLoadError(f'image file "{path}": {reason}')
    flags = (cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
             if exif_orientation else cv2.IMREAD_UNCHANGED)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None or img.size == 0:
        raise ImageLoadError(
            f'cannot decode image file "{path}" ({len(data)} bytes): '
            'not an image, or corrupt / truncated')
    return to_bgr_uint8(img, high_depth, path)


def read_image_bgr(path: str, check_truncated: bool = False,
                   **kwargs) -> np.ndarray:
    """Read a local image file into uint8 BGR, in ``LoadImageFromFile``'s
    frame (:func:`decode_image`).

    Args:
        path: Image file.
        check_truncated: See :func:`decode_image`. Defaults to False (the
            proposal tools search what OpenCV decodes).
        **kwargs: Other arguments of :func:`decode_image`.

    Returns:
        np.ndarray: uint8 (H, W, 3) BGR.

    Raises:
        ImageLoadError: The file cannot be read or decoded (an ``OSError``
            and a ``ValueError``); the message names the file.
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise ImageLoadError(f'cannot read image file "{path}": '
                             f'{type(e).__name__}: {e}') from e
    return decode_image(data, path, check_truncated=check_truncated,
                        **kwargs)


__all__ = [
    'ImageLoadError', 'truncation_reason', 'to_bgr_uint8', 'decode_image',
    'read_image_bgr'
]
