# Copyright (c) mmselfdet contributors. All rights reserved.
"""The modules split out this round (issue 19) at their own paths: the old
paths give the same objects, and each does what its name says."""
import os

import cv2
import numpy as np
import pytest
import torch

from mmselfdet.datasets import toy, toy_preview, toy_render
from mmselfdet.engine.hooks import safe_checkpoint_hook
from mmselfdet.models.proposers import heatmap, heatmap_ops
from mmselfdet.simdetr import self_training_hook
from mmselfdet.utils import image_list


def test_toy_render_draws_visible_instances_deterministically():
    assert toy.render_toy_scene is toy_render.render_toy_scene
    a, inst_a = toy_render.render_toy_scene(np.random.default_rng(3), 64)
    b, inst_b = toy_render.render_toy_scene(np.random.default_rng(3), 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and len(inst_a) == len(inst_b) >= 1
    for o in inst_a:  # annotated = the visible part, at least 30 % of it
        assert o['area'] == int(np.count_nonzero(o['mask']))
        assert o['area'] >= 0.3 * o['full_area']


def test_toy_preview_png_fits_its_byte_budget():
    assert toy.draw_preview is toy_preview.draw_preview
    img = np.random.default_rng(0).integers(0, 256, (96, 96, 3), np.uint8)
    data = toy_preview.encode_png(img, max_bytes=12_000)
    assert len(data) <= 12_000
    dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert dec.shape == img.shape


def test_heatmap_ops_normalise_and_flood_fill():
    assert heatmap.normalized_heat is heatmap_ops.normalized_heat
    feat = torch.zeros(1, 2, 4, 4)
    feat[0, :, 1, 1] = 3.0
    feat[0, 0, 3, 3] = -5.0  # ReLU'd away
    heat = heatmap_ops.normalized_heat(feat)
    assert heat[0, 1, 1] == 1 and heat.sum() == 1
    binary = torch.zeros(1, 5, 5, dtype=torch.bool)
    binary[0, 0, 0:3] = True  # one 8-connected blob of 4 pixels
    binary[0, 1, 3] = True
    binary[0, 4, 4] = True  # a separate pixel
    region = heatmap_ops.connected_region(binary, torch.tensor([0]))
    expected = binary.clone()
    expected[0, 4, 4] = False
    assert torch.equal(region, expected)


def test_image_list_scans_folders_and_names_missing_files(tmp_path):
    for name in ('b.jpg', 'sub/a.png', 'notes.txt'):
        p = tmp_path / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b'x')
    infos = image_list.scan_folder(str(tmp_path))
    names = [image_list.relative_image_name(i['img_path'], str(tmp_path))
             for i in infos]
    assert names == ['b.jpg', 'sub/a.png']  # sorted, recursive, images only
    assert [i['img_id'] for i in infos] == [0, 1]
    lst = tmp_path / 'list.txt'
    lst.write_text('b.jpg\nmissing.jpg\n')
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        image_list.list_image_infos(str(lst), str(tmp_path))
    os.remove(tmp_path / 'b.jpg')
    with pytest.raises(FileNotFoundError, match='b.jpg'):
        image_list.list_image_infos(str(lst), str(tmp_path))


def test_safe_checkpoint_hook_and_removed_self_training_hook():
    from mmselfdet.engine import SafeCheckpointHook
    from mmselfdet.registry import HOOKS
    assert SafeCheckpointHook is safe_checkpoint_hook.SafeCheckpointHook
    assert HOOKS.get('SafeCheckpointHook') is SafeCheckpointHook
    with pytest.raises(TypeError, match='SelfTrainingLoop'):
        self_training_hook.SelfTrainingHook(interval=10)
