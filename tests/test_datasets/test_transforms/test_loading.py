# Copyright (c) mmselfdet contributors. All rights reserved.
import os.path as osp

import cv2
import numpy as np
import pytest

from mmselfdet.datasets.transforms import ImageLoadError, LoadImageRobust


def _load(path, **kwargs):
    return LoadImageRobust(**kwargs)(dict(img_path=str(path)))


def _write_jpeg(path, size=(48, 64)):
    img = np.random.RandomState(0).randint(0, 255, size + (3, ), np.uint8)
    cv2.imwrite(str(path), img)
    return path


def test_color_image_loads_as_uint8_bgr(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    cv2.imwrite(str(tmp_path / 'c.png'), img)
    res = _load(tmp_path / 'c.png')
    assert res['img'].dtype == np.uint8 and res['img'].shape == (20, 30, 3)
    assert np.array_equal(res['img'], img)
    assert res['img_shape'] == res['ori_shape'] == (20, 30)
    assert 'homography_matrix' not in res


@pytest.mark.parametrize('cut', [2, 200, 0.5])
def test_truncated_jpeg(tmp_path, cut):
    path = _write_jpeg(tmp_path / 'good.jpg')
    data = path.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else len(data) - cut
    bad = tmp_path / 'broken_file.jpg'
    bad.write_bytes(data[:n])
    with pytest.raises(ImageLoadError, match='broken_file.jpg'):
        _load(bad)
    LoadImageRobust.reset_skip_count()
    assert _load(bad, on_error='skip') is None
    assert _load(bad, on_error='skip') is None
    assert LoadImageRobust.skip_count() == 2
    LoadImageRobust.reset_skip_count()


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ImageLoadError, match='no_such.jpg'):
        _load(tmp_path / 'no_such.jpg')
    (tmp_path / 'text.png').write_bytes(b'this is not an image at all')
    with pytest.raises(ImageLoadError, match='text.png'):
        _load(tmp_path / 'text.png')
    (tmp_path / 'empty.jpg').write_bytes(b'')
    with pytest.raises(ImageLoadError, match='empty.jpg'):
        _load(tmp_path / 'empty.jpg')
    # truncated PNG
    cv2.imwrite(str(tmp_path / 'p.png'), np.ones((30, 30, 3), np.uint8))
    data = (tmp_path / 'p.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(data[:-12])
    with pytest.raises(ImageLoadError, match='cut.png'):
        _load(tmp_path / 'cut.png')


def test_skip_logs_the_file(tmp_path, monkeypatch):
    import logging

    from mmselfdet.datasets.transforms import loading
    logged = []
    monkeypatch.setattr(loading, 'print_log',
                        lambda msg, logger=None, level=0: logged.append(
                            (msg, level)))
    (tmp_path / 'junk_name.jpg').write_bytes(b'\xff\xd8garbage')
    LoadImageRobust.reset_skip_count()
    assert _load(tmp_path / 'junk_name.jpg', on_error='skip') is None
    assert len(logged) == 1 and logged[0][1] == logging.WARNING
    assert 'junk_name.jpg' in logged[0][0]
    LoadImageRobust.reset_skip_count()


def test_gray_rgba_and_16bit(tmp_path):
    gray = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    cv2.imwrite(str(tmp_path / 'g.png'), gray)
    img = _load(tmp_path / 'g.png')['img']
    assert img.shape == (20, 30, 3)
    assert all(np.array_equal(img[..., i], gray) for i in range(3))

    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[..., :3] = (10, 20, 30)
    bgra[..., 3] = np.arange(12, dtype=np.uint8)[None] * 20
    cv2.imwrite(str(tmp_path / 'a.png'), bgra)
    for exif in (True, False):  # decoder drops alpha / we drop it
        img = _load(tmp_path / 'a.png', exif_orientation=exif)['img']
        assert img.shape == (10, 12, 3) and (img == (10, 20, 30)).all()

    deep = np.full((8, 9, 3), 257 * 100, np.uint16)
    deep[0, 0] = 65535
    deep[1, 1] = 0
    cv2.imwrite(str(tmp_path / 'd.png'), deep)
    img = _load(tmp_path / 'd.png')['img']
    assert img.dtype == np.uint8 and img.shape == (8, 9, 3)
    assert (img[0, 0] == 255).all() and (img[1, 1] == 0).all()
    assert (img[2, 2] == 100).all()
    dim = np.full((8, 9), 1000, np.uint16)  # e.g. 12-bit data
    dim[0, 0] = 4000
    cv2.imwrite(str(tmp_path / 'dim.png'), dim)
    img = _load(tmp_path / 'dim.png', high_depth='minmax')['img']
    assert img.shape == (8, 9, 3)
    assert (img[0, 0] == 255).all() and (img[1, 1] == 0).all()
    assert (_load(tmp_path / 'dim.png')['img'][1, 1] == 4).all()


def test_gray_alpha_png(tmp_path):
    Image = pytest.importorskip('PIL.Image')
    la = np.dstack([np.full((6, 7), 90, np.uint8), np.full((6, 7), 3, np.uint8)])
    Image.fromarray(la, 'LA').save(tmp_path / 'la.png')
    for exif in (True, False):
        img = _load(tmp_path / 'la.png', exif_orientation=exif)['img']
        assert img.shape == (6, 7, 3) and (img == 90).all()


def test_min_size_upscales_and_composes(tmp_path):
    cv2.imwrite(str(tmp_path / 'tiny.png'), np.full((10, 20, 3), 50, np.uint8))
    res = LoadImageRobust(min_size=32)(dict(
        img_path=str(tmp_path / 'tiny.png'),
        instances=[dict(bbox=[1, 2, 5, 6], bbox_label=0, ignore_flag=0)]))
    assert res['img'].shape == (32, 64, 3)
    assert res['img_shape'] == (32, 64) and res['ori_shape'] == (10, 20)
    assert np.allclose(res['homography_matrix'], np.diag([3.2, 3.2, 1]))
    assert np.allclose(res['instances'][0]['bbox'], [3.2, 6.4, 16, 19.2])
    # large enough images are left alone
    res = LoadImageRobust(min_size=10)(dict(img_path=str(tmp_path / 'tiny.png')))
    assert res['img'].shape == (10, 20, 3) and 'homography_matrix' not in res
    assert 'min_size=10' in repr(LoadImageRobust(min_size=10))


def test_skip_refetches_in_dataset(tmp_path):
    from mmdet.registry import DATASETS
    _write_jpeg(tmp_path / '0.jpg')
    (tmp_path / '1.jpg').write_bytes(b'broken')
    ds = DATASETS.build(dict(
        type='UnlabeledDataset', data_root=str(tmp_path),
        pipeline=[dict(type='LoadImageRobust', on_error='skip')]))
    LoadImageRobust.reset_skip_count()
    np.random.seed(0)
    for _ in range(3):
        out = ds[1]
        assert osp.basename(out['img_path']) == '0.jpg'
    # the refetch may draw the broken image again: >= 1 skip per call
    assert LoadImageRobust.skip_count() >= 3
    LoadImageRobust.reset_skip_count()
    ds_raise = DATASETS.build(dict(
        type='UnlabeledDataset', data_root=str(tmp_path),
        pipeline=[dict(type='LoadImageRobust')]))
    with pytest.raises(ImageLoadError, match='1.jpg'):
        ds_raise[1]
