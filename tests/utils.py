# Copyright (c) mmselfdet contributors. All rights reserved.
"""Helpers shared by the tests that run real Runners."""
import os
import os.path as osp

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_MOCO = osp.join(REPO, 'configs/mocov2/mocov2_r18_1xb32-180it_toy.py')


def write_random_images(folder: str, n: int = 8, size: int = 48) -> str:
    """Write ``n`` random JPEGs into ``folder`` (an unlabeled image set)."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)
        cv2.imwrite(osp.join(folder, f'{i:03d}.jpg'), img)
    return folder


def tiny_moco_config(img_dir: str, work_dir: str, max_iters: int = 3,
                     batch_size: int = 4, queue_len: int = 16,
                     ckpt_interval: int = 3) -> str:
    """Write a config file that `_base_`s the toy MoCo config and shrinks
    it to seconds on a CPU; returns its path."""
    text = f'''
_base_ = [{TOY_MOCO!r}]
model = dict(queue_len={queue_len})
view = [
    dict(type='RandomResizedCropWithBoxes', scale=32, crop_scale=(0.2, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'img_shape',
                                          'homography_matrix')),
]
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={img_dir!r}, ann_file='', data_prefix=dict(img=''),
                 pipeline=[_base_.load_image,
                           dict(type='LoadAnnotations', with_bbox=True),
                           dict(type='MultiBranch',
                                branch_field=['view1', 'view2'],
                                view1=view, view2=view)]))
max_iters = {max_iters}
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
param_scheduler = []
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={ckpt_interval}, max_keep_ckpts=5))
log_processor = dict(window_size=1, by_epoch=False)
work_dir = {work_dir!r}
'''
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'tiny_moco.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


def load_tool(path: str):
    """Import a script under ``tools/`` (e.g. ``'tools/eval_proposals.py'``)
    as a module, registered in ``sys.modules`` so that worker processes can
    unpickle its functions."""
    import importlib.util
    import sys
    name = '_tool_' + path.replace('/', '_')[:-3]
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
