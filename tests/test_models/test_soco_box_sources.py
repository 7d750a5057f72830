# Copyright (c) mmselfdet contributors. All rights reserved.
"""SoCo's box sources (mmselfdet/models/algorithms/soco_boxes.py): the
offline source hands over the views' boxes unchanged; options of the
end-to-end variant given to the offline one are refused by name."""
import pytest
import torch

from mmselfdet.models.algorithms.soco_boxes import (HeatMapBoxSource,
                                                    ViewBoxSource)
from mmselfdet.registry import MODELS
from .test_heatmap_e2e import e2e_cfg
from .test_soco import BOXES, batch, tiny_soco

E2E_ONLY = dict(heat_stage=0, restrict_to_views=False, min_visible=0.3,
                jitter=None, heat_network='online',
                heat_warmup=dict(iters=2), extra_crops=dict(num_crops=1),
                cutout=dict(prob=0.5))


@pytest.mark.parametrize('key', E2E_ONLY)
def test_end_to_end_keys_without_a_proposer_are_refused_by_name(key):
    with pytest.raises(ValueError, match=f'{key} needs a proposer'):
        MODELS.build(dict(tiny_soco(), **{key: E2E_ONLY[key]}))


def test_unknown_key_is_named_and_sources_follow_the_mode():
    with pytest.raises(TypeError, match='heat_stages'):
        MODELS.build(dict(tiny_soco(), heat_stages=1))
    assert isinstance(MODELS.build(tiny_soco()).box_source, ViewBoxSource)
    e2e = MODELS.build(e2e_cfg(min_visible=0.3, heat_network='online'))
    assert isinstance(e2e.box_source, HeatMapBoxSource)
    assert e2e.box_source.min_visible == 0.3
    assert e2e.box_source.heat_network == 'online'


def test_view_box_source_returns_the_packed_boxes_and_ids():
    data = batch(n=2)
    samples = [data['data_samples'][v] for v in ('v1', 'v2', 'v3')]
    out = ViewBoxSource()([None] * 3, samples)
    assert out.pairs is None and out.stats == {}
    for view, want_ids in zip(range(3), ([0, 1, 2, 3], [0, 1, 2, 3],
                                         [3, 1])):
        for i in range(2):
            assert out.ids[view][i].tolist() == want_ids
            assert torch.equal(out.boxes[view][i], torch.tensor(
                [BOXES[j] for j in want_ids], dtype=torch.float))
