# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stage A over a folder with a corrupt image
(tools/detr_pretrain/make_proposals.py, mmselfdet/simdetr/
feature_proposals.py): the file is listed as skipped and never replaced by
another image, or the run stops at once naming it; a merge refuses
duplicate image ids."""
import os.path as osp

import numpy as np
import pytest

from mmselfdet.simdetr import (load_feature_proposals, merge_shards,
                                     write_shard)
from ..utils import load_tool, write_random_images


def _args(img_dir, out, *extra):
    return [img_dir, '--arch', 'resnet18', '--stage', '1', '--img-scale',
            '64', '64', '--out', out, '--shard-size', '3', '--batch-size',
            '2', '--workers', '0', '--no-progress', '--device', 'cpu',
            *extra]


@pytest.fixture
def bad_folder(tmp_path):
    d = write_random_images(str(tmp_path / 'imgs'), n=6, size=48)
    bad = osp.join(d, '002.jpg')
    with open(bad, 'wb') as f:
        f.write(b'this is not a JPEG')
    return d, bad


def test_stage_a_lists_a_corrupt_image_without_substituting(bad_folder,
                                                            tmp_path):
    img_dir, bad = bad_folder
    tool = load_tool('tools/detr_pretrain/make_proposals.py')
    out = str(tmp_path / 'props.json')
    stats = tool.main(_args(img_dir, out))
    obj, feats = load_feature_proposals(out)
    names = [im['file_name'] for im in obj['images']]
    ids = [im['id'] for im in obj['images']]
    # every good image exactly once, the corrupt one absent
    assert sorted(names) == [f'{i:03d}.jpg' for i in (0, 1, 3, 4, 5)]
    assert sorted(ids) == [0, 1, 3, 4, 5]
    assert stats['images'] == 5 and stats['skipped'] == 1
    skipped = obj['info']['skipped_images']
    assert [(s['id'], s['file_name']) for s in skipped] == [(2, '002.jpg')]
    assert 'decode' in skipped[0]['reason']
    assert {p['image_id'] for p in obj['proposals']} <= set(ids)
    assert len(feats) == len(obj['proposals'])


def test_stage_a_fail_policy_stops_naming_the_file(bad_folder, tmp_path):
    img_dir, bad = bad_folder
    tool = load_tool('tools/detr_pretrain/make_proposals.py')
    out = str(tmp_path / 'props.json')
    with pytest.raises(SystemExit, match='002.jpg'):
        tool.main(_args(img_dir, out, '--bad-images', 'fail'))
    # stopped in the shard holding the file: no shard of it, no output
    assert not osp.exists(out)
    assert not osp.exists(osp.join(str(tmp_path), 'props.shards',
                                   '00000.json'))


def test_merge_refuses_duplicate_image_ids(tmp_path):
    d = str(tmp_path / 'p.shards')
    res = dict(bboxes=np.zeros((1, 4)), scores=np.ones(1),
               feats=np.ones((1, 2), np.float32))
    im = dict(id=7, file_name='7.jpg', width=9, height=9)
    write_shard(d, 0, [im, dict(im, id=8, file_name='8.jpg')], [res, res])
    write_shard(d, 1, [dict(im, file_name='other.jpg')], [res])
    with pytest.raises(ValueError, match=r'image id 7.*00000.*00001'):
        merge_shards(d, str(tmp_path / 'p.json'), info={})
    assert not osp.exists(str(tmp_path / 'p.json'))
