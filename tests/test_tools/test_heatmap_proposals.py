# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: tools/heatmap_proposals.py, tools/benchmarks/soco_vs_e2e.py
"""The heat-map proposer as an offline proposal source: its file is scored
by tools/eval_proposals.py and feeds object-aware crops like a selective
search file does."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmselfdet.datasets.proposals import load_proposal_file
from mmselfdet.registry import DATASETS, MODELS
from ..utils import REPO, load_tool

E2E = osp.join(REPO, 'configs/soco/soco-e2e_r18_fpn_1xb32-150it_toy.py')


def test_heatmap_file_is_scored_and_feeds_object_aware_crops(toy_root,
                                                             tmp_path,
                                                             capsys):
    out = str(tmp_path / 'heat.json')
    ann = osp.join(toy_root, 'annotations', 'val.json')
    tool = load_tool('tools/heatmap_proposals.py')
    assert tool.main([E2E, osp.join(toy_root, 'val'), '--ann-file', ann,
                      '--out', out, '--num-boxes', '20', '--size', '96',
                      '--device', 'cpu']) == 0
    table, info = load_proposal_file(out)
    assert info['algorithm'] == 'heat_map' and info['failed_images'] == []
    with open(ann) as f:
        gt = json.load(f)
    sizes = {im['id']: (im['width'], im['height']) for im in gt['images']}
    counts = []
    for img_id, (w, h) in sizes.items():
        boxes = table[img_id]['bboxes']
        counts.append(len(boxes))
        assert len(boxes) <= 20
        # boxes in the image's own pixels, positive size
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w + 1e-3).all()
        assert (boxes[:, 3] <= h + 1e-3).all()
        assert (boxes[:, 2] > boxes[:, 0]).all()
    assert sum(counts) > len(sizes)  # more than the fallback box per image

    evaluator = load_tool('tools/eval_proposals.py')
    assert evaluator.main([out, ann, '--max-dets', '10', '20']) == 0
    assert 'AR@10' in capsys.readouterr().out

    # the same file as the proposal source of object-aware crops
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/objcrop/mocov2-objcrop_r18_1xb32-150it_toy.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=toy_root + '/', ann_file='annotations/val.json',
                  data_prefix=dict(img='val/'), proposal_file=out,
                  keep_boxes=False)
    pipeline = [dict(type='LoadImageRobust', on_error='skip'),
                dict(type='LoadProposals')]
    for t in ds_cfg.pipeline:
        if t['type'] == 'ObjectAwareCrops':
            pipeline.append(dict(t, box_source='proposals'))
        elif t['type'] == 'PackViews':
            pipeline.append(t)
    ds_cfg.pipeline = pipeline
    dataset = DATASETS.build(ds_cfg)
    sample = dataset[0]
    assert set(sample['inputs']) == {'view1', 'view2'}


def test_benchmark_step_times_both_methods(toy_root):
    """The benchmark's per-iteration part runs both toy configs on the same
    images (tiny batch, one timed step each)."""
    bench = load_tool('tools/benchmarks/soco_vs_e2e.py')
    gen = load_tool('tools/generate_proposals.py')
    ss = osp.join(toy_root, bench.SS_FILE)
    if not osp.isfile(ss):
        assert gen.main([osp.join(toy_root, 'unlabeled'), '--ann-file',
                         osp.join(toy_root, 'annotations', 'unlabeled.json'),
                         '--out', ss, '--mode', 'fast', '--max-side',
                         '96']) == 0
    torch.manual_seed(0)
    times = bench.step_times(toy_root, batch_size=2, iters=1, warmup=0,
                             device='cpu')
    assert set(times) == set(bench.STEP_METHODS)
    assert all(np.isfinite(t['median_s']) and t['median_s'] > 0
               for t in times.values())


def test_heatmap_tool_reads_target_backbone_of_a_checkpoint(tmp_path):
    """--net target takes the momentum encoder's backbone, not the online
    one (they differ after training)."""
    tool = load_tool('tools/heatmap_proposals.py')
    cfg = Config.fromfile(E2E)
    model = MODELS.build(cfg.model)
    enc = model.target_net.module  # a BoxEncoder (or an older tuple)
    target_backbone = enc.backbone if hasattr(enc, 'backbone') else enc[0]
    with torch.no_grad():
        for p in target_backbone.parameters():
            p.add_(1.0)
    ckpt = str(tmp_path / 'm.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    target, _, stage = tool.build_parts(cfg, ckpt, 'target', torch.device(
        'cpu'))
    online, _, _ = tool.build_parts(cfg, ckpt, 'online', torch.device('cpu'))
    assert stage == 0
    assert torch.equal(target.conv1.weight, target_backbone.conv1.weight)
    assert torch.equal(online.conv1.weight, model.backbone.conv1.weight)
    assert not torch.equal(target.conv1.weight, online.conv1.weight)


def test_heatmap_tool_without_checkpoint_is_reproducible(toy_root, tmp_path):
    """Without --checkpoint the backbone is randomly initialised: --seed
    seeds that too, so two runs write the same boxes (and the proposer's
    changes can be compared on the same network)."""
    tool = load_tool('tools/heatmap_proposals.py')
    ann = osp.join(toy_root, 'annotations', 'val.json')
    tables = []
    for i in range(2):
        out = str(tmp_path / f'heat{i}.json')
        torch.manual_seed(i)  # the global state must not matter
        assert tool.main([E2E, osp.join(toy_root, 'val'), '--ann-file', ann,
                          '--out', out, '--num-boxes', '10', '--size', '64',
                          '--device', 'cpu', '--seed', '3']) == 0
        tables.append(load_proposal_file(out)[0])
    assert tables[0].keys() == tables[1].keys()
    for img_id, rec in tables[0].items():
        np.testing.assert_array_equal(rec['bboxes'],
                                      tables[1][img_id]['bboxes'])


def test_heatmap_tool_resumes_to_the_boxes_of_one_run(toy_root, tmp_path,
                                                      monkeypatch):
    """Killed in its second shard, the rerun computes only the remaining
    shards and writes the boxes of an uninterrupted run (each batch's draws
    are seeded by its first image id, not by what ran before)."""
    tool = load_tool('tools/heatmap_proposals.py')
    ann = osp.join(toy_root, 'annotations', 'val.json')

    def args(out):
        return [E2E, osp.join(toy_root, 'val'), '--ann-file', ann, '--out',
                str(out), '--num-boxes', '6', '--size', '64', '--device',
                'cpu', '--batch-size', '2', '--shard-size', '4']

    assert tool.main(args(tmp_path / 'one.json')) == 0
    real = tool.HeatMapBatches.__call__
    seen = []

    def dies_in_shard_1(self, images):
        if len(seen) == 6:
            raise KeyboardInterrupt
        seen.extend(im['id'] for im in images)
        return real(self, images)

    monkeypatch.setattr(tool.HeatMapBatches, '__call__', dies_in_shard_1)
    out = tmp_path / 'resumed.json'
    with pytest.raises(KeyboardInterrupt):
        tool.main(args(out))
    assert os.listdir(tmp_path / 'resumed.parts') == ['shard-00000.json']
    seen.clear()
    monkeypatch.setattr(tool.HeatMapBatches, '__call__', lambda self, ims: (
        seen.extend(im['id'] for im in ims) or real(self, ims)))
    assert tool.main(args(out)) == 0
    ids = [im['id'] for im in json.load(open(ann))['images']]
    assert seen == ids[4:]  # shard 0 was not redone
    one, resumed = (load_proposal_file(p)[0] for p in (tmp_path / 'one.json',
                                                       out))
    for img_id in ids:
        np.testing.assert_array_equal(resumed[img_id]['bboxes'],
                                      one[img_id]['bboxes'])
    assert sum(len(one[i]['bboxes']) for i in ids) > len(ids)
