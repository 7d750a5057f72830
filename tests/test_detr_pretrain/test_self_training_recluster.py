# Copyright (c) mmselfdet contributors. All rights reserved.
"""SelfTrainingLoop(recluster=True) (mmselfdet/simdetr/self_training.py):
every box of the next round, kept prediction or previous label, gets its id
from one k-means, so the round holds a single label space; and the loop's
default selection. The removed SelfTrainingHook names the loop."""
import json
import os.path as osp
import types

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmselfdet.registry import HOOKS
from mmselfdet.simdetr import (SelfTrainingLoop, cluster_class_names,
                               write_coco_json)

# inputs are 64x64 (original images 128x128, scale factor 0.5); the
# backbone's 8x8 map is [1, 0] left of x=32 and [0, 1] right of it
LEFT_IN, RIGHT_IN = [0., 0., 24., 24.], [40., 40., 64., 64.]  # input px


class _Detector(torch.nn.Module):
    """Image 1 predicts a left and a right box; image 2 predicts nothing
    confident (score 0.1)."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = lambda data, training: data
        self.backbone = self._backbone

    @staticmethod
    def _backbone(inputs):
        fmap = inputs.new_zeros(len(inputs), 2, 8, 8)  # (N, 2, 8, 8)
        fmap[:, 0, :, :4] = 1
        fmap[:, 1, :, 4:] = 1
        return (fmap, )

    def predict(self, inputs, samples, rescale=False):
        out = []
        for s in samples:
            res = DetDataSample(metainfo=s.metainfo)
            confident = s.metainfo['img_id'] == 1
            res.pred_instances = InstanceData(
                bboxes=torch.tensor([LEFT_IN, RIGHT_IN]),
                scores=torch.tensor([0.9, 0.8] if confident else [0.1, 0.1]),
                labels=torch.tensor([5, 6]))
            out.append(res)
        return out


def _dataset(ann_file):
    from mmdet.datasets import CocoDataset
    return CocoDataset(ann_file=ann_file, metainfo=dict(
        classes=cluster_class_names(8)), data_prefix=dict(img=''),
        filter_cfg=dict(filter_empty_gt=False), pipeline=[])


def _loop(tmp_path, ann_file, **self_training):
    """A SelfTrainingLoop (interval 10, 20 iterations) over a stub runner
    whose ``build_dataloader`` makes a COCO dataset of the config's
    ``ann_file`` and whose model relabels as :class:`_Detector` does; the
    label dataloader yields one batch of images 1 and 2."""
    samples = [DetDataSample(metainfo=dict(img_id=i, scale_factor=(0.5, 0.5)))
               for i in (1, 2)]
    batch = dict(inputs=torch.zeros(2, 3, 64, 64), data_samples=samples)
    label_loader = type('Loader', (), dict(
        dataset=[0, 1], __iter__=lambda self: iter([batch])))()

    def build_dataloader(cfg, seed=None, diff_rank_seed=False):
        return type('Loader', (), dict(
            dataset=_dataset(cfg['dataset']['ann_file']),
            __iter__=lambda self: iter([{}] * 1000)))()

    model = _Detector()
    model.train_step = lambda data, optim_wrapper=None: {}
    runner = types.SimpleNamespace(
        model=model, work_dir=str(tmp_path), seed=0, _randomness_cfg={},
        cfg={}, visualizer=types.SimpleNamespace(), optim_wrapper=None,
        val_loop=None,
        register_hook=lambda hook: None, call_hook=lambda *a, **k: None,
        build_dataloader=build_dataloader)
    return SelfTrainingLoop(
        runner, dict(dataset=dict(type='CocoDataset', ann_file=ann_file)),
        max_iters=20, label_dataloader=label_loader, interval=10,
        num_rounds=2, **self_training)


def _train_to_round_1(loop):
    """The loop's ``run()`` (20 iterations): the 10th ends round 0, the loop
    relabels and rebuilds its dataloader on round 1's json."""
    loop.run()
    path = loop.rounds.ann_file
    assert loop.iter == 20 and loop.rounds.round == 1
    assert path.endswith('round_01.json')
    assert loop.dataloader.dataset.ann_file == path


def test_removed_hook_names_the_loop():
    with pytest.raises(TypeError, match=r"train_cfg=dict\(type="
                       r"'SelfTrainingLoop'.*SelfTrainingEpochLoop"):
        HOOKS.build(dict(type='SelfTrainingHook', interval=10))


def test_recluster_puts_kept_previous_labels_in_the_new_label_space(
        tmp_path):
    images = [dict(id=i, file_name=f'{i}.jpg', width=128, height=128)
              for i in (1, 2)]
    # image 2's previous labels (original px): the left and the right half
    # (in input px [0, 0, 30, 60] and [34, 0, 64, 60]), old ids 7 and 3
    prev = np.array([[0, 0, 60, 120], [68, 0, 128, 120]], np.float64)
    r0 = str(tmp_path / 'round_00.json')
    write_coco_json(r0, images, {
        1: (prev, np.array([7, 3]), np.ones(2)),
        2: (prev, np.array([7, 3]), np.ones(2))}, cluster_class_names(8))
    loop = _loop(tmp_path, r0, selection='threshold', score_thr=0.5,
                 nms_iou=None, recluster=True)
    with pytest.warns(UserWarning, match='using K=2'):
        _train_to_round_1(loop)
    obj = json.load(open(osp.join(str(tmp_path), 'self_training',
                                  'round_01.json')))
    labels = {}
    for a in obj['annotations']:
        labels.setdefault(a['image_id'], []).append(
            (a['bbox'][0], a['category_id']))
    # image 1: its predictions (input px / 0.5), left and right cluster
    (x1l, l1), (x1r, r1) = sorted(labels[1])
    assert (x1l, x1r) == (0, 80) and l1 != r1
    # image 2 keeps its previous boxes, but their ids come from the same
    # k-means as image 1's: left box = left cluster, right box = right one
    (x2l, l2), (x2r, r2) = sorted(labels[2])
    assert (x2l, x2r) == (0, 68)
    assert (l2, r2) == (l1, r1)
    assert {l1, r1} == {0, 1}  # the fresh k-means' ids, not old 7 / 3


def test_default_selection_keeps_the_top_k_of_low_score_predictions(
        tmp_path):
    """Default selection (top-k on the maximum class score): image 2's
    predictions score 0.1, below any threshold rule, and still become its
    round-1 labels; ``selection='threshold'`` keeps its previous boxes."""
    images = [dict(id=i, file_name=f'{i}.jpg', width=128, height=128)
              for i in (1, 2)]
    prev = np.array([[0, 0, 60, 120]], np.float64)
    r0 = str(tmp_path / 'round_00.json')
    write_coco_json(r0, images, {i: (prev, np.array([7]), np.ones(1))
                                 for i in (1, 2)}, cluster_class_names(8))
    out = osp.join(str(tmp_path), 'self_training', 'round_01.json')
    for selection, expect in (('topk', [[0, 0, 48, 48], [80, 80, 48, 48]]),
                              ('threshold', [[0, 0, 60, 120]])):
        kw = {} if selection == 'topk' else dict(selection=selection)
        _train_to_round_1(_loop(tmp_path, r0, nms_iou=None, max_per_img=2,
                                **kw))
        got = sorted(a['bbox'] for a in json.load(open(out))['annotations']
                     if a['image_id'] == 2)
        assert got == expect, selection
