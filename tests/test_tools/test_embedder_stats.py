# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/benchmarks/embedder_stats.py: the common-component ratio is
|batch mean| / mean distance from it, and the tool reports it per layer of
a real InsLoc box embedder on a toy batch (a checkpoint loads into it)."""
import json
import os.path as osp

import pytest
import torch

from ..utils import REPO, load_tool

CFG = osp.join(REPO, 'configs/insloc/insloc_r18_fpn_1xb32-150it_toy.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/benchmarks/embedder_stats.py')


def test_common_ratio(tool):
    # two samples c +- d: the mean is c, each sample is |d| away
    c, d = torch.tensor([3.0, 4.0, 0.0]), torch.tensor([0.0, 0.0, 0.5])
    s = tool.common_ratio(torch.stack([c + d, c - d]))
    assert s['mean_norm'] == pytest.approx(5.0)
    assert s['mean_dev'] == pytest.approx(0.5)
    assert s['ratio'] == pytest.approx(10.0)


def test_layers_of_a_toy_insloc(tool, toy_root, tmp_path):
    from mmengine.config import Config

    from mmselfdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CFG).model)
    with torch.no_grad():  # a checkpoint whose output has a big bias
        model.box_embedder.fc_out.bias.fill_(100.0)
    ckpt = str(tmp_path / 'biased.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = str(tmp_path / 'stats.json')
    res = tool.main([CFG, ckpt, '--batch-size', '4', '--out', out,
                     '--cfg-options',
                     f'train_dataloader.dataset.dataset.data_root={toy_root}/'])
    assert list(res['init']) == ['pooled', 'conv0', 'conv1', 'conv2',
                                 'conv3', 'fc0', 'fc1', 'fc_out']
    assert res['init']['fc_out']['ratio'] < 10
    # the checkpoint is loaded: its bias dominates fc_out, not fc1
    assert res[ckpt]['fc1']['ratio'] < 10
    assert res[ckpt]['fc_out']['ratio'] > 100
    assert json.load(open(out)) == json.loads(json.dumps(res))
