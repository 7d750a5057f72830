# Copyright (c) mmselfdet contributors. All rights reserved.
"""UnlabeledDataset and the two-view pipeline batched by
data_preprocessors/multi_view.py (MultiViewDataPreprocessor)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmselfdet.datasets import UnlabeledDataset
from mmselfdet.registry import DATASETS, MODELS
from ..utils import TOY_MOCO, write_random_images


def test_folder_list_and_coco_sources(tmp_path, toy_root):
    folder = write_random_images(str(tmp_path / 'imgs' / 'sub'), n=3)
    write_random_images(str(tmp_path / 'imgs'), n=2)
    ds = UnlabeledDataset(data_root=str(tmp_path / 'imgs'))
    assert len(ds) == 5  # recursive, sorted
    assert ds[0]['img_path'].endswith('imgs/000.jpg')
    assert ds[0]['instances'] == []

    lst = tmp_path / 'list.txt'
    lst.write_text('sub/000.jpg 3\n\nsub/002.jpg\n')
    ds = UnlabeledDataset(ann_file=str(lst),
                          data_prefix=dict(img=str(tmp_path / 'imgs')))
    assert [osp.basename(d['img_path']) for d in ds] == ['000.jpg', '002.jpg']
    assert folder  # written

    ds = UnlabeledDataset(data_root=toy_root, ann_file='annotations/train.json',
                          data_prefix=dict(img='train/'))
    coco = json.load(open(osp.join(toy_root, 'annotations/train.json')))
    assert len(ds) == len(coco['images'])
    assert all(d['instances'] == [] for d in ds)
    kept = UnlabeledDataset(data_root=toy_root,
                            ann_file='annotations/train.json',
                            data_prefix=dict(img='train/'), keep_boxes=True)
    n_boxes = sum(len(d['instances']) for d in kept)
    assert n_boxes == len(coco['annotations'])


def test_bad_input_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope'):
        UnlabeledDataset(data_root=str(tmp_path / 'nope'))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('x')
    with pytest.raises(ValueError, match='empty'):
        UnlabeledDataset(data_root=str(tmp_path / 'empty'))
    write_random_images(str(tmp_path / 'imgs'), n=2)
    lst = tmp_path / 'list.txt'
    lst.write_text('000.jpg\nmissing_image.jpg\n')
    with pytest.raises(FileNotFoundError, match='missing_image.jpg'):
        UnlabeledDataset(ann_file=str(lst),
                         data_prefix=dict(img=str(tmp_path / 'imgs')))
    with pytest.raises(FileNotFoundError, match='no_such.json'):
        UnlabeledDataset(ann_file=str(tmp_path / 'no_such.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"annotations": []}')
    with pytest.raises(KeyError, match='bad.json'):
        UnlabeledDataset(ann_file=str(bad))
    # with the start-up check off, the loader names the missing file
    # (on_error='fail'; the default 'skip' draws another image)
    ds = UnlabeledDataset(ann_file=str(lst), check_files=False,
                          data_prefix=dict(img=str(tmp_path / 'imgs')),
                          pipeline=[dict(type='LoadImageRobust',
                                         on_error='fail')],
                          bad_images='fail')
    with pytest.raises(Exception, match='missing_image.jpg'):
        ds[1]


def test_image_loader_is_named_in_the_config(tmp_path):
    """The base configs name LoadImageRobust; the dataset checks it against
    bad_images, and a plain LoadImageFromFile (once swapped silently) is an
    error naming the pipeline key and the config fix."""
    from mmselfdet.datasets.transforms import LoadImageRobust
    from ..utils import REPO
    for base in ('toy_mocov2', 'imagenet_mocov2'):
        cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets',
                                       f'{base}.py'))
        assert cfg.train_dataloader.dataset.pipeline[0] == dict(
            type='LoadImageRobust', on_error='skip')
    imgs = write_random_images(str(tmp_path / 'imgs'), n=2)
    robust = [dict(type='LoadImageRobust', on_error='skip')]
    ds = UnlabeledDataset(data_root=imgs, pipeline=robust)
    assert type(ds.pipeline.transforms[0]) is LoadImageRobust
    assert ds.pipeline.transforms[0].on_error == 'skip'
    ds = UnlabeledDataset(data_root=imgs, pipeline=robust, bad_images='skip')
    with pytest.raises(ValueError, match="bad_images='fail' but the "
                       'pipeline loads with LoadImageRobust'):
        UnlabeledDataset(data_root=imgs, pipeline=robust, bad_images='fail')
    pack = dict(type='PackDetInputs')
    for policy in (None, 'skip', 'fail'):
        with pytest.raises(ValueError) as err:
            UnlabeledDataset(data_root=imgs, bad_images=policy,
                             pipeline=[pack, dict(type='LoadImageFromFile')])
        msg = str(err.value)
        # the key, the fix (the base configs' loader) and the policy
        want = 'skip' if policy is None else policy
        assert 'pipeline[1]' in msg and 'LoadImageFromFile' in msg, msg
        assert "dict(type='LoadImageRobust', on_error=" \
            f"{want!r})" in msg, msg
        assert '_base_.load_image' in msg and 'view_augs.py' in msg, msg


def test_two_view_pipeline_keeps_boxes_and_geometry(toy_root):
    """The toy MoCo pipeline gives two views with their homographies; with
    ground-truth boxes kept, a box mapped by the homography lands where the
    view's own box is."""
    cfg = Config.fromfile(TOY_MOCO)
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=toy_root, keep_boxes=True)
    ds = DATASETS.build(ds_cfg)
    assert repr(ds.pipeline.transforms[0]).startswith(
        "LoadImageRobust(on_error='skip'")  # named in the base config
    np.random.seed(0)
    sample = ds[0]
    assert set(sample['inputs']) == {'view1', 'view2'}
    src = ds.get_data_info(0)['instances']
    for view in ('view1', 'view2'):
        img = sample['inputs'][view]
        ds_meta = sample['data_samples'][view]
        assert img.shape == (3, 64, 64)
        H = ds_meta.metainfo['homography_matrix']
        boxes = ds_meta.gt_instances.bboxes.tensor.numpy()
        assert len(boxes) <= len(src)
        for b in boxes:
            # each view box is the image of some source box under H
            # (clipped to the view)
            best = min(_dist(_map_box(H, s['bbox'], img.shape[1:]), b)
                       for s in src)
            assert best < 1.0
    # batching through the data preprocessor keeps the view names
    pre = MODELS.build(cfg.model.data_preprocessor)
    batch = pre(pseudo_collate([sample, ds[1]]), True)
    assert batch['inputs']['view1'].shape == (2, 3, 64, 64)
    assert batch['inputs']['view1'].dtype == torch.float32
    assert len(batch['data_samples']['view2']) == 2


def _map_box(H, box, hw):
    x1, y1, x2, y2 = box
    pts = np.array([[x1, y1, 1], [x2, y2, 1], [x1, y2, 1], [x2, y1, 1]]).T
    q = H @ pts
    q = q[:2] / q[2]
    h, w = hw
    xs = np.clip(q[0], 0, w)
    ys = np.clip(q[1], 0, h)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()])


def _dist(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())
