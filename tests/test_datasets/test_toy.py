# Copyright (c) mmselfdet contributors. All rights reserved.
"""Tests of the built-in toy dataset generator (mmselfdet.datasets.toy)."""
from __future__ import annotations

import importlib.util
import json
import os
import os.path as osp
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from mmselfdet.datasets.toy import (
    TOY_CLASSES,
    TOY_METAINFO,
    TOY_SPLITS,
    draw_preview,
    generate_toy_dataset,
    render_toy_scene,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(seed=0, img_size=96, num_unlabeled=12, num_train=12, num_val=6)


def _generate(out_dir, **overrides):
    params = dict(SMALL, **overrides)
    return generate_toy_dataset(out_dir, progress=False, **params)


def _all_files(root) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


def _mtimes(root) -> dict[str, int]:
    return {
        osp.relpath(osp.join(d, n), root): os.stat(osp.join(d, n)).st_mtime_ns
        for d, _, files in os.walk(root) for n in files
    }


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('toy'))
    _generate(root)
    return root


def _load(root, split):
    with open(osp.join(root, 'annotations', f'{split}.json')) as f:
        return json.load(f)


def test_layout_and_return_value(toy_root):
    paths = _generate(toy_root)  # reuses the existing files
    assert set(paths) == set(TOY_SPLITS) | {'meta'}
    for split in TOY_SPLITS:
        assert paths[split]['img_dir'] == osp.join(toy_root, split)
        assert paths[split]['ann_file'] == osp.join(toy_root, 'annotations',
                                                    f'{split}.json')
        n = SMALL[f'num_{split}']
        assert sorted(os.listdir(paths[split]['img_dir'])) == [
            f'{i:06d}.jpg' for i in range(n)
        ]
    with open(paths['meta']) as f:
        meta = json.load(f)
    assert meta['params'] == SMALL
    assert meta['classes'] == list(TOY_CLASSES)
    assert 'version' in meta


def test_determinism(tmp_path, toy_root):
    a, b, c = tmp_path / 'a', tmp_path / 'b', tmp_path / 'c'
    _generate(a)
    _generate(b)
    files_a, files_b = _all_files(a), _all_files(b)
    assert files_a == files_b
    assert files_a == _all_files(toy_root)  # also across processes' fixtures
    # a different seed gives different annotations and images
    _generate(c, seed=1)
    files_c = _all_files(c)
    assert files_c.keys() == files_a.keys()
    for split in TOY_SPLITS:
        key = osp.join('annotations', f'{split}.json')
        assert files_c[key] != files_a[key]
    jpgs = [k for k in files_a if k.endswith('.jpg')]
    assert all(files_a[k] != files_c[k] for k in jpgs)
    # splits use independent streams: no image repeats across splits
    assert len({files_a[k] for k in jpgs}) == len(jpgs)


def test_render_scene_is_a_function_of_the_rng():
    img1, inst1 = render_toy_scene(np.random.default_rng(5), 64)
    img2, inst2 = render_toy_scene(np.random.default_rng(5), 64)
    assert img1.shape == (64, 64, 3) and img1.dtype == np.uint8
    np.testing.assert_array_equal(img1, img2)
    assert [i['label'] for i in inst1] == [i['label'] for i in inst2]
    for i1, i2 in zip(inst1, inst2):
        np.testing.assert_array_equal(i1['mask'], i2['mask'])
    img3, _ = render_toy_scene(np.random.default_rng(6), 64)
    assert not np.array_equal(img1, img3)


@pytest.mark.parametrize('split', TOY_SPLITS)
def test_coco_json_is_valid(toy_root, split):
    ann_file = osp.join(toy_root, 'annotations', f'{split}.json')
    coco = COCO(ann_file)
    size = SMALL['img_size']
    assert len(coco.getImgIds()) == SMALL[f'num_{split}']
    cats = coco.loadCats(coco.getCatIds())
    assert [c['id'] for c in cats] == [1, 2, 3, 4, 5]
    assert tuple(c['name'] for c in cats) == TOY_CLASSES
    ann_ids = set()
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        assert info['file_name'] == osp.basename(info['file_name'])
        assert (info['width'], info['height']) == (size, size)
        img = cv2.imread(osp.join(toy_root, split, info['file_name']))
        assert img is not None and img.shape == (size, size, 3)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert 1 <= len(anns) <= 8
        union = np.zeros((size, size), np.int32)
        for ann in anns:
            assert ann['id'] not in ann_ids
            ann_ids.add(ann['id'])
            assert ann['image_id'] == img_id
            assert ann['category_id'] in range(1, 6)
            assert ann['iscrowd'] == 0
            x, y, w, h = ann['bbox']
            assert w >= 1 and h >= 1
            assert x >= 0 and y >= 0 and x + w <= size and y + h <= size
            seg = ann['segmentation']
            assert isinstance(seg, dict) and isinstance(seg['counts'], str)
            assert list(seg['size']) == [size, size]
            mask = mask_util.decode(seg)
            assert mask.shape == (size, size)
            # via the COCO API too
            np.testing.assert_array_equal(coco.annToMask(ann), mask)
            ys, xs = np.nonzero(mask)
            assert [x, y, w, h] == [
                xs.min(), ys.min(), xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1
            ]
            assert ann['area'] == int(mask.sum())
            # the filtering rule of the generator
            assert ann['area'] >= 16
            assert ann['area'] >= 0.3 * ann['full_area'] - 1e-6
            assert ann['area'] <= ann['full_area']
            union += mask
        # visible parts of different objects never overlap
        assert union.max() <= 1


def test_every_class_appears_and_occlusion_happens(toy_root):
    coco = _load(toy_root, 'train')
    counts = np.bincount([a['category_id'] for a in coco['annotations']],
                         minlength=6)
    assert (counts[1:] > 0).all(), counts
    occluded = [a for a in coco['annotations'] if a['area'] < a['full_area']]
    assert occluded, 'no occluded object in the train split'
    assert len({a['image_id'] for a in occluded}) >= 1
    per_image = np.bincount([a['image_id'] for a in coco['annotations']])
    assert per_image.max() >= 3  # scenes are multi-object


def test_occlusion_is_real(toy_root):
    """An occluded object's mask is covered by a later object's mask."""
    coco = _load(toy_root, 'train')
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    found = False
    for anns in by_image.values():
        anns = sorted(anns, key=lambda a: a['id'])  # drawing order
        for k, ann in enumerate(anns[:-1]):
            if ann['area'] == ann['full_area']:
                continue
            mask = mask_util.decode(ann['segmentation']).astype(bool)
            later = np.zeros_like(mask)
            for other in anns[k + 1:]:
                later |= mask_util.decode(other['segmentation']).astype(bool)
            # dilating the visible part touches a later object
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
            if (grown.astype(bool) & later).any():
                found = True
    assert found


def test_mmdet_coco_dataset_loads_split(toy_root):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules

    register_all_modules()
    dataset = CocoDataset(
        data_root=toy_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        metainfo=TOY_METAINFO,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True)
        ])
    assert len(dataset) == SMALL['num_train']
    assert tuple(dataset.metainfo['classes']) == TOY_CLASSES
    coco = _load(toy_root, 'train')
    size = SMALL['img_size']
    for idx in (0, len(dataset) - 1):
        results = dataset[idx]
        img_id = results['img_id']
        anns = [a for a in coco['annotations'] if a['image_id'] == img_id]
        n = len(anns)
        assert results['img'].shape == (size, size, 3)
        boxes = results['gt_bboxes']
        assert tuple(boxes.shape) == (n, 4)
        expected = np.array([[x, y, x + w, y + h] for x, y, w, h in
                             (a['bbox'] for a in anns)], np.float32)
        np.testing.assert_allclose(boxes.numpy(), expected)
        np.testing.assert_array_equal(results['gt_bboxes_labels'],
                                      [a['category_id'] - 1 for a in anns])
        masks = results['gt_masks']
        assert masks.masks.shape == (n, size, size)
        assert [int(m.sum()) for m in masks.masks] == [a['area'] for a in anns]


def test_generate_if_absent_does_not_rewrite(tmp_path):
    root = tmp_path / 'toy'
    first = _generate(root, img_size=64, num_unlabeled=3, num_train=3, num_val=2)
    before = _mtimes(root)
    second = _generate(root, img_size=64, num_unlabeled=3, num_train=3,
                       num_val=2)
    assert second == first
    assert _mtimes(root) == before
    # a missing image triggers a regeneration that restores it
    missing = osp.join(first['train']['img_dir'], '000001.jpg')
    with open(missing, 'rb') as f:
        content = f.read()
    os.remove(missing)
    _generate(root, img_size=64, num_unlabeled=3, num_train=3, num_val=2)
    with open(missing, 'rb') as f:
        assert f.read() == content


def test_parameter_mismatch_raises_unless_overwrite(tmp_path):
    root = tmp_path / 'toy'
    small = dict(img_size=64, num_unlabeled=3, num_train=4, num_val=2)
    _generate(root, **small)
    before = _all_files(root)
    with pytest.raises(FileExistsError, match='different parameters'):
        _generate(root, **dict(small, seed=3))
    with pytest.raises(FileExistsError, match='overwrite'):
        _generate(root, **dict(small, num_train=2))
    assert _all_files(root) == before  # nothing was touched
    paths = generate_toy_dataset(
        root, overwrite=True, progress=False, **dict(small, num_train=2))
    assert sorted(os.listdir(paths['train']['img_dir'])) == [
        '000000.jpg', '000001.jpg'
    ]  # stale images of the old run are gone
    with open(paths['meta']) as f:
        assert json.load(f)['params']['num_train'] == 2
    # overwrite=True with identical parameters keeps the bytes identical
    again = generate_toy_dataset(
        root, overwrite=True, progress=False, **dict(small, num_train=2))
    assert again == paths


def test_invalid_parameters(tmp_path):
    with pytest.raises(ValueError, match='img_size'):
        _generate(tmp_path / 'a', img_size=16)
    with pytest.raises(ValueError, match='seed'):
        _generate(tmp_path / 'b', seed=-1)
    with pytest.raises(ValueError, match='num_val'):
        _generate(tmp_path / 'c', num_val=-1)


def test_draw_preview(tmp_path, toy_root):
    out = draw_preview(tmp_path / 'sub' / 'preview.png', toy_root, 'val', num=4)
    assert osp.isfile(out)
    assert os.path.getsize(out) < 200_000
    grid = cv2.imread(out)
    assert grid is not None
    assert grid.shape[0] > 2 * 128 and grid.shape[1] > 2 * 128  # 2x2 tiles


def test_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'make_toy_dataset', REPO_ROOT / 'tools' / 'make_toy_dataset.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / 'toy'
    png = tmp_path / 'preview.png'
    argv = [
        '--out', str(out), '--seed', '2', '--img-size', '64', '--num-unlabeled',
        '2', '--num-train', '3', '--num-val', '1', '--preview', str(png)
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and str(png) in printed
    assert png.is_file()
    with open(out / 'meta.json') as f:
        assert json.load(f)['params'] == dict(
            seed=2, img_size=64, num_unlabeled=2, num_train=3, num_val=1)
    assert cli.main(argv[:2] + ['--seed', '3', '--img-size', '64']) == 1
    assert 'overwrite' in capsys.readouterr().err
