# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stage B and COCO writing (mmselfdet/simdetr/pseudo_labels.py,
coco.py, feature_proposals.py, rounds.py)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmselfdet.simdetr import (cluster_class_names, cluster_features,
                                     load_feature_proposals, merge_shards,
                                     proposals_to_coco,
                                     pseudo_labels_from_proposals,
                                     select_predictions, write_coco_json,
                                     write_shard)


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:4] * 5
    sizes = [n // 2, n // 4, n // 8, n - n // 2 - n // 4 - n // 8]
    x = np.concatenate([c + 0.1 * rng.standard_normal((s, 8))
                        for c, s in zip(centres, sizes)])
    return x.astype(np.float32), np.repeat(np.arange(4), sizes)


def test_kmeans_ids_are_stable_and_canonical():
    x, truth = blobs()
    a, ca = cluster_features(x, 4, seed=0, normalize=False)
    b, cb = cluster_features(x, 4, seed=0, normalize=False)
    assert np.array_equal(a, b) and np.array_equal(ca, cb)
    # id 0 is the largest cluster, ids follow the size order
    assert np.array_equal(np.bincount(a), np.sort(np.bincount(truth))[::-1])
    # the partition is the true one
    for k in range(4):
        assert len(set(truth[a == k])) == 1
    # another seed finds the same clusters under the same canonical ids
    c, _ = cluster_features(x, 4, seed=1, normalize=False)
    assert np.array_equal(a, c)


def test_kmeans_bad_input_and_small_sets():
    with pytest.raises(ValueError, match='non-empty'):
        cluster_features(np.zeros((0, 4)), 2)
    with pytest.raises(ValueError, match='non-finite'):
        cluster_features(np.full((3, 2), np.nan), 2)
    x = np.repeat(np.eye(3, dtype=np.float32), 2, axis=0)
    with pytest.warns(UserWarning, match='using K=3'):
        labels, centres = cluster_features(x, 8)
    assert len(centres) == 3 and set(labels) == {0, 1, 2}


def test_coco_json_loads_in_mmdet(tmp_path):
    from mmdet.datasets import CocoDataset
    images = [dict(id=1, file_name='a.jpg', width=64, height=48),
              dict(id=2, file_name='b.jpg', width=64, height=48)]
    names = cluster_class_names(3)
    path = str(tmp_path / 'p.json')
    counts = write_coco_json(path, images, {
        1: (np.array([[1, 2, 11, 22], [0, 0, 30, 40]]), np.array([2, 0]),
            np.array([0.9, 0.5]))
    }, names)
    assert counts == dict(images=2, annotations=2, images_without_boxes=1)
    ds = CocoDataset(ann_file=path, metainfo=dict(classes=names),
                     data_prefix=dict(img=str(tmp_path)),
                     filter_cfg=dict(filter_empty_gt=False), pipeline=[],
                     test_mode=False)
    assert len(ds) == 2
    inst = ds[0]['instances']
    assert [i['bbox_label'] for i in inst] == [2, 0]
    assert inst[0]['bbox'] == [1, 2, 11, 22]
    with pytest.raises(ValueError, match='labels must lie'):
        write_coco_json(path, images, {1: (np.zeros((1, 4)), np.array([3]),
                                           np.ones(1))}, names)
    with pytest.raises(ValueError, match='not in images'):
        write_coco_json(path, images, {9: (np.zeros((0, 4)), [], [])}, names)


def _stage_a_files(tmp_path):
    """Two shards of two images each, written out of id order."""
    d = str(tmp_path / 'p.shards')
    rng = np.random.default_rng(0)

    def res(n, off):
        return dict(bboxes=np.tile([[0, 0, 10, 10]], (n, 1)) + off,
                    scores=np.linspace(0.9, 0.1, n) if n else np.zeros(0),
                    feats=rng.standard_normal((n, 4)).astype(np.float32))

    ims = [dict(id=i, file_name=f'{i}.jpg', width=50, height=50)
           for i in (3, 4, 1, 2)]
    r = [res(3, 0), res(0, 0), res(2, 5), res(4, 1)]
    write_shard(d, 1, ims[:2], r[:2])
    write_shard(d, 0, ims[2:], r[2:])
    out = str(tmp_path / 'p.json')
    merge_shards(d, out, info=dict(algorithm='test'))
    return out, dict(zip([3, 4, 1, 2], r))


def test_shards_merge_aligned(tmp_path):
    out, by_id = _stage_a_files(tmp_path)
    obj, feats = load_feature_proposals(out)
    assert isinstance(feats, np.memmap)  # stage B maps, never loads it
    assert [im['id'] for im in obj['images']] == [1, 2, 3, 4]
    expect = np.concatenate([by_id[i]['feats'] for i in (1, 2, 3)])
    assert feats.dtype == np.float16  # stage A's file: float16
    assert np.array_equal(feats, expect.astype(np.float16))
    assert [p['image_id'] for p in obj['proposals']] == [1] * 2 + [2] * 4 + \
        [3] * 3
    np.save(osp.join(tmp_path, 'p.features.npy'), feats[:-1])
    with pytest.raises(ValueError, match='feature rows'):
        load_feature_proposals(out)


def test_stage_b_and_detreg_json(tmp_path):
    out, _ = _stage_a_files(tmp_path)
    coco = str(tmp_path / 'pseudo.json')
    stats = pseudo_labels_from_proposals(out, coco, num_classes=2)
    assert stats['annotations'] == 9 and stats['images_without_boxes'] == 1
    obj = json.load(open(coco))
    assert [c['name'] for c in obj['categories']] == ['cluster_000',
                                                      'cluster_001']
    assert {a['category_id'] for a in obj['annotations']} == {0, 1}
    ss = str(tmp_path / 'ss.json')
    proposals_to_coco(out, ss, topk=2)
    obj = json.load(open(ss))
    assert len(obj['annotations']) == 6
    assert obj['categories'] == [dict(id=0, name='object')]


def test_select_predictions():
    b = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 11], [20, 20, 30, 30],
                      [40, 40, 50, 50]], dtype=torch.float)
    s = torch.tensor([0.9, 0.8, 0.7, 0.1])
    lab = torch.tensor([0, 1, 1, 0])
    kb, ks, kl = select_predictions(b, s, lab, mode='threshold',
                                    score_thr=0.3, nms_iou=0.5)
    assert ks.tolist() == pytest.approx([0.9, 0.7])
    assert kl.tolist() == [0, 1]
    _, ks, _ = select_predictions(b, s, lab, mode='threshold',
                                  score_thr=0.3, nms_iou=0.5,
                                  class_agnostic=False)
    assert len(ks) == 3
    _, ks, _ = select_predictions(b, s, lab, score_thr=0.0, nms_iou=None,
                                  max_per_img=2)
    assert ks.tolist() == pytest.approx([0.9, 0.8])


def test_write_round_reclusters_every_box_into_one_label_space(tmp_path):
    from mmselfdet.simdetr import write_round
    images = [dict(id=i, file_name=f'{i}.jpg', width=40, height=40)
              for i in (1, 2, 3)]
    box = np.array([[0, 0, 10, 10], [5, 5, 20, 20]], np.float64)
    # image 3's ids (2, 1) come from another label space (e.g. kept from
    # the previous round): they must be re-clustered with the rest
    preds = {1: (box, np.array([3, 3]), np.ones(2)),
             2: (box, np.array([3, 3]), np.ones(2)),
             3: (box, np.array([2, 1]), np.ones(2))}
    feats = {1: np.array([[1, 0], [0, 1]], np.float32),
             2: np.array([[1, 0], [0, 1]], np.float32),
             3: np.array([[0, 1], [1, 0]], np.float32)}
    path = str(tmp_path / 'r.json')
    with pytest.warns(UserWarning, match='using K=2'):
        write_round(path, images, preds, cluster_class_names(4), 1,
                    feats=feats)
    obj = json.load(open(path))
    by_img = {}
    for a in obj['annotations']:
        by_img.setdefault(a['image_id'], []).append(a['category_id'])
    assert by_img[1] == by_img[2] and sorted(by_img[1]) == [0, 1]
    assert by_img[3] == by_img[1][::-1]  # same features, same ids
    assert obj['info'] == dict(round=1, reclustered=True)
    # an image with boxes but no features would keep foreign ids: refused
    del feats[3]
    with pytest.raises(ValueError, match=r'image id\(s\) \[3\]'):
        write_round(path, images, preds, cluster_class_names(4), 1,
                    feats=feats)
    feats[3] = np.ones((1, 2), np.float32)  # 1 row for 2 boxes
    with pytest.raises(ValueError, match=r'image id\(s\) \[3\]'):
        write_round(path, images, preds, cluster_class_names(4), 1,
                    feats=feats)


def test_round0_keeps_the_best_30_boxes_per_image_by_default(tmp_path):
    """Round-0 labels are the best N = 30 stage-A boxes of an image by
    score (DETReg's top 30), not all of them; --max-per-img 0 keeps all."""
    rng = np.random.default_rng(0)
    n = 40
    scores = rng.permutation(n) / n  # distinct, shuffled
    boxes = np.stack([np.arange(n), np.zeros(n), np.arange(n) + 10,
                      np.full(n, 10)], 1).astype(np.float64)
    d = str(tmp_path / 'p.shards')
    write_shard(d, 0, [dict(id=1, file_name='1.jpg', width=64, height=64)],
                [dict(bboxes=boxes, scores=scores,
                      feats=rng.standard_normal((n, 4)).astype(np.float32))])
    props = str(tmp_path / 'p.json')
    merge_shards(d, props, info=dict(algorithm='test'))
    coco = str(tmp_path / 'pseudo.json')
    pseudo_labels_from_proposals(props, coco, num_classes=2)
    anns = json.load(open(coco))['annotations']
    best = np.argsort(-scores, kind='stable')[:30]
    assert sorted(a['bbox'][0] for a in anns) == sorted(boxes[best, 0])
    # the tool's default is the same N, 0 switches the cap off
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_cluster_tool', osp.join(osp.dirname(__file__), '..', '..', 'tools',
                                  'detr_pretrain', 'cluster_pseudo_labels.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([props, '--num-classes', '2', '--out', coco])
    assert len(json.load(open(coco))['annotations']) == 30
    tool.main([props, '--num-classes', '2', '--out', coco,
               '--max-per-img', '0'])
    assert len(json.load(open(coco))['annotations']) == n


def test_select_predictions_default_is_top_k_on_the_max_class_score():
    """Default: the k best queries of an image by their maximum class score
    (sigmoid scores over 256 classes rarely pass 0.3); a query that mmdet's
    sigmoid head lists once per class counts once, with its best class.
    The threshold rule stays as ``mode='threshold'``."""
    q = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 0, 70, 9]]
    # query 0 twice (classes 3 and 5), the flat list is not score-ordered
    b = torch.tensor([q[1], q[0], q[2], q[0], q[3]], dtype=torch.float)
    s = torch.tensor([0.12, 0.15, 0.05, 0.2, 0.02])
    lab = torch.tensor([1, 5, 2, 3, 4])
    kb, ks, kl = select_predictions(b, s, lab, nms_iou=None, max_per_img=3)
    assert kb.tolist() == [q[0], q[1], q[2]]
    assert ks.tolist() == pytest.approx([0.2, 0.12, 0.05])
    assert kl.tolist() == [3, 1, 2]
    # NMS still applies before the top k (class-agnostic by default)
    near = torch.cat([b, torch.tensor([[0., 0., 10., 11.]])])
    kb, _, _ = select_predictions(near, torch.cat([s, s.new_tensor([0.19])]),
                                  torch.cat([lab, lab.new_tensor([0])]),
                                  nms_iou=0.5, max_per_img=2)
    assert kb.tolist() == [q[0], q[1]]
    # the switch: the old threshold rule keeps nothing here
    kb, _, _ = select_predictions(b, s, lab, mode='threshold', score_thr=0.3)
    assert len(kb) == 0
    with pytest.raises(ValueError, match='mode'):
        select_predictions(b, s, lab, mode='best')


def test_stage_b_clusters_a_memory_mapped_float16_file_without_a_copy(
        tmp_path):
    """Stage B at COCO scale: the float16 feature file is memory-mapped and
    clustered in streamed mini-batches, so the heap never holds a float32
    copy of the (N, C) matrix (the old path held the loaded matrix, the
    norms' temporary and the normalised copy: peak 3x the float32 size)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    n, c = 24000, 64
    centres = rng.standard_normal((4, c)).astype(np.float32) * 4
    truth = rng.integers(0, 4, n)
    x = centres[truth] + rng.standard_normal((n, c)).astype(np.float32)
    path = str(tmp_path / 'f.features.npy')
    np.save(path, x.astype(np.float16))
    feats = np.load(path, mmap_mode='r')
    full32 = n * c * 4
    tracemalloc.start()
    try:
        labels, _ = cluster_features(feats, 4, seed=0, batch_size=256,
                                     max_iter=1, chunk_bytes=2**16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < full32 / 4, (peak, full32)
    # still the right clusters: each true blob is one pseudo-class
    pairs = set(zip(truth.tolist(), labels.tolist()))
    assert len(pairs) == 4 and len({b for _, b in pairs}) == 4
