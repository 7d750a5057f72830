# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/utils/io.py, mmselfdet/utils/image.py
"""The one atomic writer and the one image decoder (shared by
LoadImageRobust and the proposal generators)."""
import os
import stat

import cv2
import numpy as np
import pytest

from mmselfdet.datasets.proposals import read_image_bgr
from mmselfdet.datasets.transforms import ImageLoadError, LoadImageRobust
from mmselfdet.utils import atomic_open, atomic_write


def test_atomic_write_replaces_whole_files_only(tmp_path):
    path = tmp_path / 'sub' / 'a.json'
    atomic_write(path, 'old\n')  # makes the folder
    assert path.read_text() == 'old\n'
    with pytest.raises(RuntimeError):
        with atomic_open(path, 'w') as f:
            f.write('half of the new')
            raise RuntimeError('killed while writing')
    assert path.read_text() == 'old\n'  # untouched, no temp file left
    assert os.listdir(tmp_path / 'sub') == ['a.json']
    atomic_write(path, b'\x00new')
    assert path.read_bytes() == b'\x00new'
    # the permissions of a plain open() (mkstemp would give 0600)
    plain = tmp_path / 'plain'
    plain.write_text('x')
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(
        plain.stat().st_mode)


def _odd_images(folder):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
    arrays = {
        'color.png': img,
        'gray.png': img[..., 0],
        'rgba.png': np.dstack([img, img[..., :1]]),
        'deep.png': img.astype(np.uint16) * 257 + 100,
        'float.tiff': img.astype(np.float32) / 255.0,
        'photo.jpg': img,
    }
    for name, arr in arrays.items():
        assert cv2.imwrite(str(folder / name), arr)
    (folder / 'garbage.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    return sorted(arrays)


def test_loader_and_proposal_reader_decode_alike(tmp_path):
    """Every layout gives the same pixels through LoadImageRobust and
    read_image_bgr (one decoder), so proposal boxes are in the frame
    training sees; a bad file is one error type for both callers."""
    names = _odd_images(tmp_path)
    for name in names:
        path = str(tmp_path / name)
        a = LoadImageRobust()(dict(img_path=path))['img']
        b = read_image_bgr(path)
        assert a.dtype == b.dtype == np.uint8 and a.shape == (20, 24, 3)
        np.testing.assert_array_equal(a, b, err_msg=name)
    deep = read_image_bgr(str(tmp_path / 'deep.png'))
    color = read_image_bgr(str(tmp_path / 'color.png'))
    # round((v * 257 + 100) / 257) == v for every 8-bit v
    np.testing.assert_array_equal(deep, color)
    rgba = read_image_bgr(str(tmp_path / 'rgba.png'))
    np.testing.assert_array_equal(rgba, color)  # alpha dropped
    gray = read_image_bgr(str(tmp_path / 'gray.png'))
    assert (gray == color[..., :1]).all()  # replicated to 3 channels
    bad = str(tmp_path / 'garbage.jpg')
    for read in (read_image_bgr,
                 lambda p: LoadImageRobust()(dict(img_path=p))):
        with pytest.raises(ImageLoadError, match='garbage.jpg') as e:
            read(bad)
        assert isinstance(e.value, OSError) and isinstance(e.value,
                                                           ValueError)
