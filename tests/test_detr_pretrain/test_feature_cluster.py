# Copyright (c) mmselfdet contributors. All rights reserved.
"""FeatureClusterProposer, kmeans_locations, cluster_components
(mmselfdet/simdetr/feature_cluster.py)."""
import numpy as np
import pytest
import torch

from mmselfdet.simdetr.feature_cluster import (
    FeatureClusterProposer, cluster_components, kmeans_locations)

META = dict(img_shape=(128, 128), scale_factor=(1.0, 1.0),
            ori_shape=(128, 128))


def two_blobs(noise=0.01, seed=0):
    """(1, 8, 16, 16) map: background channel 0, blobs on channels 1, 2."""
    g = torch.Generator().manual_seed(seed)
    f = torch.zeros(1, 8, 16, 16)
    f[:, 0] = 1
    f[0, :, 2:6, 3:8] = 0
    f[0, 1, 2:6, 3:8] = 1
    f[0, :, 10:14, 9:15] = 0
    f[0, 2, 10:14, 9:15] = 1
    return f + noise * torch.randn(f.shape, generator=g)


def test_two_separated_blobs_give_two_boxes():
    p = FeatureClusterProposer(num_clusters=(3, ), min_size=1)
    out = p(two_blobs(), [META], (128, 128))[0]
    boxes = sorted(out['bboxes'].tolist())
    # stride 8: cells x 3..7, y 2..5 and x 9..14, y 10..13
    assert boxes == [[24, 16, 64, 48], [72, 80, 120, 112]]
    assert out['feats'].shape == (2, 8)
    assert torch.all(out['scores'][:-1] >= out['scores'][1:])
    # the pooled feature is the blob's mean feature
    blob1 = out['feats'][out['bboxes'][:, 0] == 24][0]
    assert blob1.argmax() == 1


def test_boxes_map_to_original_image_and_several_k_deduplicate():
    meta = dict(img_shape=(128, 128), scale_factor=(2.0, 2.0),
                ori_shape=(64, 64))
    p = FeatureClusterProposer(num_clusters=(3, 4, 6), min_size=1,
                               nms_iou=0.7)
    out = p(two_blobs(), [meta], (128, 128))[0]
    boxes = out['bboxes'].tolist()
    assert [12, 8, 32, 24] in boxes and [36, 40, 60, 56] in boxes
    # no two kept boxes overlap beyond the NMS threshold
    from mmselfdet.structures.box_ops import box_iou
    iou = box_iou(out['bboxes'], out['bboxes']).fill_diagonal_(0)
    assert float(iou.max()) <= 0.7


def test_padding_is_ignored_and_filters_apply():
    f = torch.cat([two_blobs(), torch.full((1, 8, 16, 8), 5.0)], 3)
    meta = dict(META, img_shape=(128, 128))
    p = FeatureClusterProposer(num_clusters=(3, ), min_size=1)
    out = p(f, [meta], (128, 192))[0]
    assert float(out['bboxes'][:, 2].max()) <= 128
    strict = FeatureClusterProposer(num_clusters=(3, ), min_size=100)
    out = strict(two_blobs(), [META], (128, 128))[0]
    assert out['bboxes'].shape == (0, 4) and out['feats'].shape == (0, 8)


def test_kmeans_is_deterministic_for_a_seed():
    x = torch.randn(200, 16)
    runs = [kmeans_locations(x, 5, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0])
    assert len(kmeans_locations(x[:3], 10)[1]) == 3  # k clamped


def test_batch_does_not_change_an_image_result():
    p = FeatureClusterProposer(min_size=1)
    f = torch.cat([two_blobs(seed=1), two_blobs(seed=2)])
    alone = p(f[:1], [META], (128, 128))[0]
    batched = p(f, [META, META], (128, 128))[0]
    assert torch.equal(alone['bboxes'], batched['bboxes'])


def test_components_and_bad_args():
    lab = np.array([[0, 0, 1], [1, 1, 1], [0, 0, 0]])
    masks = cluster_components(lab, connectivity=4)
    assert sorted(int(m.sum()) for m in masks) == [2, 3, 4]
    assert len(cluster_components(lab, connectivity=8, min_cells=3)) == 2
    with pytest.raises(ValueError, match='connectivity'):
        FeatureClusterProposer(connectivity=6)
    with pytest.raises(ValueError, match='num_clusters'):
        FeatureClusterProposer(num_clusters=())


def test_contrast_score_prefers_regions_unlike_their_surroundings():
    """Blob A varies inside (a checkerboard) but differs from the background
    around it; blob B is uniform but close to the background. Coherence ranks
    B first, contrast (coherence minus the similarity to the ring around the
    component) ranks A first."""
    f = torch.zeros(1, 8, 16, 16)
    f[:, 0] = 1
    f[0, :, 2:6, 3:8] = 0
    f[0, 1, 2:6, 3:8] = 1
    checker = (torch.arange(4)[:, None] + torch.arange(5)[None]) % 2
    f[0, 4, 2:6, 3:8] = 0.3 * (2 * checker - 1).float()
    f[0, 2, 10:14, 9:15] = 1  # B: background channel stays 1
    a, b = [24., 16., 64., 48.], [72., 80., 120., 112.]
    for score, first in (('coherence', b), ('contrast', a)):
        p = FeatureClusterProposer(num_clusters=(3, ), min_size=1,
                                   score=score)
        out = p(f, [META], (128, 128))[0]
        assert sorted(out['bboxes'].tolist()) == [a, b]
        assert out['bboxes'][0].tolist() == first, score
    with pytest.raises(ValueError, match='score'):
        FeatureClusterProposer(score='area')


def test_smoothing_keeps_a_striped_object_in_one_box():
    """A 6x6 object of alternating stripes (channels 1 and 2) on background
    channel 0. Raw locations: the stripes are separate clusters, hence
    separate boxes. With a 3x3 average first, the object is one region and
    one box; its feature is still the raw mean over the component."""
    f = torch.zeros(1, 3, 16, 16)
    f[:, 0] = 1
    f[0, :, 4:10, 4:10] = 0
    f[0, 1, 4:10, 4:10:2] = 1
    f[0, 2, 4:10, 5:10:2] = 1
    kw = dict(num_clusters=(2, ), min_size=1, aspect_range=None, min_cells=1)
    raw = FeatureClusterProposer(**kw)(f, [META], (128, 128))[0]
    assert len(raw['bboxes']) >= 2
    assert all(b[2] - b[0] == 8 for b in raw['bboxes'].tolist())  # stripes
    out = FeatureClusterProposer(smooth=3, **kw)(f, [META], (128, 128))[0]
    assert out['bboxes'].tolist() == [[32., 32., 80., 80.]]
    assert torch.allclose(out['feats'][0], torch.tensor([0., .5, .5]))
    for bad in (0, 2, 1.5):
        with pytest.raises(ValueError, match='smooth'):
            FeatureClusterProposer(smooth=bad)
