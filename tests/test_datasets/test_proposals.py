# Copyright (c) mmselfdet contributors. All rights reserved.
"""Proposal file format, filters, and proposals in UnlabeledDataset."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmselfdet.datasets import UnlabeledDataset
from mmselfdet.datasets.proposals import (
    filter_proposals,
    load_proposal_file,
    rank_scores,
    read_image_bgr,
    save_proposal_file,
    selective_search,
)
from mmselfdet.evaluation import average_recall, box_iou

OFF = dict(min_size=None, aspect_range=None, area_ratio_range=None)


def _toy_val(toy_root):
    with open(osp.join(toy_root, 'annotations/val.json')) as f:
        return json.load(f)


def _images(coco):
    return [dict(id=im['id'], file_name=im['file_name'], width=im['width'],
                 height=im['height']) for im in coco['images']]


# --------------------------------------------------------------------------
# file format
# --------------------------------------------------------------------------
def test_round_trip_is_exact_and_byte_stable(tmp_path):
    images = [dict(id=7, file_name='sub/b.jpg', width=100, height=80),
              dict(id=2, file_name='a.jpg', width=50, height=40)]
    boxes = np.array([[1.25, 2.5, 30.75, 40.0], [0, 0, 50, 40],
                      [10.37, 5.11, 60.93, 70.0]], np.float32)
    scores = np.array([0.2, 0.9, 0.5], np.float32)
    p1 = tmp_path / 'p1.json'
    save_proposal_file(p1, images, {7: dict(bboxes=boxes, scores=scores)},
                       dict(algorithm='test'))
    table, info = load_proposal_file(p1)
    assert info['algorithm'] == 'test' and info['format_version'] == '1.0'
    order = [1, 2, 0]  # by descending score
    np.testing.assert_array_equal(table[7]['bboxes'], boxes[order])
    np.testing.assert_array_equal(table[7]['scores'], scores[order])
    assert table[7]['bboxes'].dtype == np.float32
    assert table['sub/b.jpg'] is table[7]  # by id and by file name
    assert table[2]['bboxes'].shape == (0, 4) and table['a.jpg']['width'] == 50
    # saving what was loaded gives the same bytes; images are sorted by id
    p2 = tmp_path / 'p2.json'
    save_proposal_file(p2, images, {7: table[7]}, info)
    assert p1.read_bytes() == p2.read_bytes()
    obj = json.loads(p1.read_text())
    assert [im['id'] for im in obj['images']] == [2, 7]
    assert obj['proposals'][0]['bbox'] == [0.0, 0.0, 50.0, 40.0]


def test_rank_scores_and_missing_scores(tmp_path):
    np.testing.assert_allclose(rank_scores(3), [1, 0.5, 1 / 3])
    save_proposal_file(tmp_path / 'p.json',
                       [dict(id=1, file_name='a.jpg', width=9, height=9)],
                       {1: dict(bboxes=[[0, 0, 4, 4], [1, 1, 5, 5]])})
    table, _ = load_proposal_file(tmp_path / 'p.json')
    np.testing.assert_allclose(table[1]['scores'], [1.0, 0.5])
    with pytest.raises(ValueError, match='not in images'):
        save_proposal_file(tmp_path / 'q.json', [], {3: [[0, 0, 1, 1]]})


def test_coco_detection_json_reads_as_proposals(tmp_path):
    coco = dict(images=[dict(id=7, file_name='a.jpg', width=9, height=9)],
                annotations=[
                    dict(id=1, image_id=7, bbox=[1, 1, 2, 2], category_id=0),
                    dict(id=2, image_id=7, bbox=[0, 0, 4, 3], category_id=1,
                         score=2.0),
                    dict(id=3, image_id=7, bbox=[0, 0, 9, 9], category_id=0,
                         iscrowd=1)],
                categories=[dict(id=0, name='c0'), dict(id=1, name='c1')])
    (tmp_path / 'c.json').write_text(json.dumps(coco))
    table, _ = load_proposal_file(tmp_path / 'c.json')
    assert table['a.jpg'] is table[7]
    np.testing.assert_allclose(table[7]['bboxes'], [[0, 0, 4, 3],
                                                    [1, 1, 3, 3]])
    np.testing.assert_allclose(table[7]['scores'], [2.0, 1.0])


@pytest.mark.parametrize('text,match', [
    ('{"images": [', 'invalid json'),
    ('{"images": []}', 'missing key'),
    ('{"images": [], "proposals": [{"image_id": 1, "bbox": [0, 0, 1, 1], '
     '"score": 1}]}', 'not in images'),
    ('{"images": [{"id": 1, "file_name": "a", "width": 5, "height": 5}], '
     '"proposals": [{"image_id": 1, "bbox": [0, NaN, 1, 1], "score": 1}]}',
     'non-finite'),
    ('{"images": [{"id": 1, "file_name": "a", "width": 5, "height": 5}], '
     '"proposals": [{"image_id": 1, "bbox": [0, 1], "score": 1}]}', 'bbox'),
    ('{"images": [{"id": 1}], "proposals": []}', 'images\\[0\\]'),
])
def test_load_errors_name_the_file(tmp_path, text, match):
    path = tmp_path / 'broken_props.json'
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        load_proposal_file(path)
    assert 'broken_props.json' in str(e.value)
    with pytest.raises(FileNotFoundError, match='nothing_here.json'):
        load_proposal_file(tmp_path / 'nothing_here.json')


# --------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------
def test_each_filter_numerically():
    wh = (200, 100)
    b = np.array([
        [0, 0, 100, 60],  # kept: aspect 1.67, sqrt(6000/20000)=0.55
        [0, 0, 200, 40],  # aspect 5 -> dropped by aspect
        [0, 0, 120, 40],  # aspect exactly 3 -> kept, ratio 0.49
        [0, 0, 31, 80],  # width 31 < 32 -> min_size
        [0, 0, 40, 40],  # sqrt(1600/20000)=0.28 < 0.3 -> area_ratio
        [0, 0, 190, 95],  # ratio 0.95 > 0.8 -> area_ratio
    ], np.float32)
    out, sc, st = filter_proposals(b, None, wh)
    np.testing.assert_array_equal(out, b[[0, 2]])
    np.testing.assert_allclose(sc, rank_scores(6)[[0, 2]])
    assert (st['min_size'], st['aspect'], st['area_ratio']) == (1, 1, 2)
    assert st['input'] == 6 and st['kept'] == 2
    # each filter alone
    assert filter_proposals(b, None, wh, **dict(OFF, min_size=32))[2][
        'min_size'] == 1
    assert filter_proposals(b, None, wh, **dict(OFF, aspect_range=(1 / 3, 3)))[
        2]['aspect'] == 1  # only the 200 x 40 box (the 31 x 80 is 0.39)
    _, _, st = filter_proposals(b, None, wh,
                                **dict(OFF, area_ratio_range=(0.3, 0.8)))
    assert st['area_ratio'] == 2


def test_clip_degenerate_nms_topk():
    b = np.array([[-20, -10, 50, 50],  # clipped to [0, 0, 50, 50]
                  [10, 10, 10, 40],  # zero width -> degenerate
                  [60, 60, 300, 300],  # clipped to [60, 60, 100, 100]
                  [120, 120, 150, 150],  # outside the image -> degenerate
                  [1, 1, 50, 50]], np.float32)  # IoU 0.96 with the first
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    out, sc, st = filter_proposals(b, scores, (100, 100), **OFF)
    np.testing.assert_array_equal(
        out, [[0, 0, 50, 50], [60, 60, 100, 100], [1, 1, 50, 50]])
    assert st['degenerate'] == 2 and st['clipped'] == 3
    out, sc, st = filter_proposals(b, scores, (100, 100), nms_iou=0.5, **OFF)
    np.testing.assert_array_equal(out, [[0, 0, 50, 50], [60, 60, 100, 100]])
    np.testing.assert_allclose(sc, [0.9, 0.7])
    assert st['nms'] == 1
    out, sc, st = filter_proposals(b, scores[::-1].copy(), (100, 100),
                                   topk=1, **OFF)
    np.testing.assert_array_equal(out, [[1, 1, 50, 50]])  # best score first
    assert st['topk'] == 2 and st['kept'] == 1
    out, sc, st = filter_proposals(np.zeros((0, 4)), None, (10, 10),
                                   nms_iou=0.5)
    assert out.shape == (0, 4) and sc.shape == (0, ) and st['kept'] == 0


def test_selective_search_maps_boxes_back():
    img = np.zeros((60, 90, 3), np.uint8)
    img[10:40, 20:70] = (0, 200, 255)
    boxes, scores = selective_search(img, max_side=180, max_boxes=50)
    assert 0 < len(boxes) <= 50 and len(scores) == len(boxes)
    assert boxes[:, [0, 2]].max() <= 90 and boxes[:, [1, 3]].max() <= 60
    # the object is found (in original pixels)
    assert box_iou(boxes, [[20, 10, 70, 40]]).max() > 0.9
    again, _ = selective_search(img, max_side=180, max_boxes=50)
    np.testing.assert_array_equal(boxes, again)


def test_selective_search_proposer_batches_like_the_heat_map():
    """The registered proposer returns the heat map's (boxes, valid, stats)
    for a batch: each image's rows are its own search, padded."""
    from mmselfdet.registry import MODELS
    proposer = MODELS.build(dict(type='SelectiveSearchProposer',
                                 max_side=None, max_boxes=30))
    a = np.zeros((48, 64, 3), np.uint8)
    a[8:30, 10:50] = (0, 200, 255)
    b = np.full((48, 64, 3), 90, np.uint8)
    b[20:44, 30:60] = (255, 0, 0)
    boxes, valid, stats = proposer(torch.from_numpy(
        np.stack([a, b])).permute(0, 3, 1, 2).float())  # (2, 3, 48, 64)
    assert boxes.shape[:2] == valid.shape and boxes.shape[0] == 2
    for i, img in enumerate((a, b)):
        own, own_scores = proposer.propose(img)
        n = int(valid[i].sum())
        assert n == len(own) and valid[i, :n].all()
        np.testing.assert_array_equal(boxes[i, :n].numpy(), own)
        assert (boxes[i, n:] == 0).all()
        np.testing.assert_array_equal(own_scores, rank_scores(n))
    assert float(stats['ss_boxes']) == valid.sum().item() / 2
    assert box_iou(boxes[0, :int(valid[0].sum())].numpy(),
                   [[10, 8, 50, 30]]).max() > 0.9
    # arrays of different sizes are accepted too
    boxes2, valid2, _ = proposer([a, b[:40]])
    np.testing.assert_array_equal(boxes2[0][valid2[0]].numpy(),
                                  proposer.propose(a)[0])
    with pytest.raises(ValueError, match='mode'):
        MODELS.build(dict(type='SelectiveSearchProposer', mode='slow'))


def test_missing_ximgproc_says_what_to_install(monkeypatch):
    monkeypatch.delattr(cv2, 'ximgproc', raising=False)
    with pytest.raises(ImportError, match='opencv-contrib-python-headless'):
        selective_search(np.zeros((8, 8, 3), np.uint8))


def test_read_image_converts_layouts(tmp_path):
    cases = {
        'gray.png': np.full((6, 7), 100, np.uint8),
        'rgba.png': np.dstack([np.full((6, 7, 3), 50, np.uint8),
                               np.zeros((6, 7), np.uint8)]),
        'deep.png': np.full((6, 7, 3), 65535, np.uint16),
    }
    for name, arr in cases.items():
        cv2.imwrite(str(tmp_path / name), arr)
        img = read_image_bgr(str(tmp_path / name))
        assert img.shape == (6, 7, 3) and img.dtype == np.uint8
    assert read_image_bgr(str(tmp_path / 'deep.png')).max() == 255
    (tmp_path / 'bad.jpg').write_bytes(b'no image')
    with pytest.raises(ValueError, match='bad.jpg'):
        read_image_bgr(str(tmp_path / 'bad.jpg'))


# --------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------
def _val_dataset(toy_root, **kw):
    kw.setdefault('pipeline', [])
    return UnlabeledDataset(data_root=toy_root,
                            ann_file='annotations/val.json',
                            data_prefix=dict(img='val/'), **kw)


def test_dataset_feeds_mmdet_load_proposals(toy_root, tmp_path):
    coco = _toy_val(toy_root)
    rng = np.random.default_rng(0)
    props = {}
    for im in coco['images']:
        xy = rng.integers(0, 40, (5, 2)).astype(np.float32)
        props[im['id']] = dict(bboxes=np.hstack([xy, xy + 40]),
                               scores=np.linspace(1, 0.2, 5))
    path = tmp_path / 'val_props.json'
    save_proposal_file(path, _images(coco), props, {})
    ds = _val_dataset(toy_root, proposal_file=str(path),
                      pipeline=[dict(type='LoadImageRobust',
                                     on_error='skip'),
                                dict(type='LoadProposals',
                                     num_max_proposals=3)])
    assert ds.proposal_stats['absent'] == 0
    assert ds.proposal_stats['boxes_kept'] == 5 * len(coco['images'])
    for i in range(len(ds)):
        out = ds[i]
        img_id = ds.get_data_info(i)['img_id']
        np.testing.assert_array_equal(out['proposals'],
                                      props[img_id]['bboxes'][:3])
        assert out['proposals_scores'].dtype == np.float32
        assert out['img'].shape[:2] == (96, 96)


def test_missing_policies(toy_root, tmp_path):
    coco = _toy_val(toy_root)
    images = _images(coco)
    first, second = images[0]['id'], images[1]['id']
    path = tmp_path / 'partial_props.json'
    boxes = np.array([[0, 0, 60, 50], [5, 5, 12, 12]], np.float32)
    # every image but the first is in the file, the second with an empty list
    save_proposal_file(path, images[1:],
                       {im['id']: dict(bboxes=boxes) for im in images[2:]}, {})
    ds = _val_dataset(toy_root, proposal_file=str(path))
    st = ds.proposal_stats
    assert (st['absent'], st['empty_in_file'], st['whole_image']) == (1, 1, 2)
    whole = [d['proposals']['bboxes'] for d in ds
             if d['img_id'] in (first, second)]
    for b in whole:
        np.testing.assert_array_equal(b, [[0, 0, 96, 96]])
    # the filter empties nothing here: the 7 x 7 box goes, the other stays
    ds = _val_dataset(toy_root, proposal_file=str(path),
                      proposal_filter=dict(min_size=32, aspect_range=None,
                                           area_ratio_range=None))
    n = len(images) - 2
    assert ds.proposal_stats['removed_min_size'] == n
    assert ds.proposal_stats['boxes_kept'] == n + 2
    # SoCo's filter: sqrt(3000 / 9216) = 0.57 keeps the 60 x 50 box
    ds = _val_dataset(toy_root, proposal_file=str(path), proposal_filter={})
    assert ds.proposal_stats['empty_after_filter'] == 0
    ds = _val_dataset(toy_root, proposal_file=str(path),
                      proposal_filter=dict(area_ratio_range=(0.7, 0.8)))
    assert ds.proposal_stats['empty_after_filter'] == n
    assert ds.proposal_stats['whole_image'] == len(images)
    skipped = _val_dataset(toy_root, proposal_file=str(path),
                           missing_proposals='skip')
    assert len(skipped) == len(images) - 2
    assert skipped.proposal_stats['skipped'] == 2
    assert {d['img_id'] for d in skipped}.isdisjoint({first, second})
    with pytest.raises(ValueError, match='partial_props.json') as e:
        _val_dataset(toy_root, proposal_file=str(path),
                     missing_proposals='error')
    assert images[0]['file_name'] in str(e.value)
    with pytest.raises(ValueError, match='missing_proposals'):
        _val_dataset(toy_root, proposal_file=str(path),
                     missing_proposals='ignore')
    with pytest.raises(TypeError, match='min_sz'):
        _val_dataset(toy_root, proposal_file=str(path),
                     proposal_filter=dict(min_sz=3))
    # ids that name other files (e.g. a file made from a folder scan)
    shifted = [dict(im, id=im['id'] + 1) for im in images]
    save_proposal_file(tmp_path / 'shifted.json', shifted, {}, {})
    with pytest.raises(ValueError, match='other images'):
        _val_dataset(toy_root, proposal_file=str(tmp_path / 'shifted.json'))
    with pytest.raises(FileNotFoundError, match='no_props.json'):
        _val_dataset(toy_root, proposal_file='no_props.json')


def test_folder_dataset_matches_relative_paths(tmp_path):
    for rel in ('a.png', 'sub/b.png'):
        (tmp_path / 'imgs' / osp.dirname(rel)).mkdir(parents=True,
                                                   exist_ok=True)
        cv2.imwrite(str(tmp_path / 'imgs' / rel), np.zeros((30, 40, 3),
                                                          np.uint8))
    path = tmp_path / 'props.json'
    # ids differ from the scan order on purpose: folders match by name
    save_proposal_file(path, [
        dict(id=10, file_name='sub/b.png', width=40, height=30),
        dict(id=11, file_name='a.png', width=40, height=30)
    ], {10: dict(bboxes=[[1, 2, 3, 4]]), 11: dict(bboxes=[[5, 6, 7, 8]])}, {})
    ds = UnlabeledDataset(data_root=str(tmp_path / 'imgs'),
                          proposal_file=str(path), pipeline=[])
    got = {osp.basename(d['img_path']): d['proposals']['bboxes'].tolist()
           for d in ds}
    assert got == {'a.png': [[5, 6, 7, 8]], 'b.png': [[1, 2, 3, 4]]}
    # an image absent from a folder dataset's file: size from the header
    cv2.imwrite(str(tmp_path / 'imgs' / 'c.png'), np.zeros((20, 25, 3),
                                                           np.uint8))
    ds = UnlabeledDataset(data_root=str(tmp_path / 'imgs'),
                          proposal_file=str(path), pipeline=[])
    c = [d for d in ds if d['img_path'].endswith('c.png')][0]
    np.testing.assert_array_equal(c['proposals']['bboxes'], [[0, 0, 25, 20]])


# --------------------------------------------------------------------------
# average recall
# --------------------------------------------------------------------------
def test_average_recall(toy_root):
    coco = _toy_val(toy_root)
    gts = {}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        gts.setdefault(a['image_id'], []).append([x, y, x + w, y + h])
    perfect = {k: np.asarray(v) for k, v in gts.items()}
    res = average_recall(perfect, coco)
    assert res['AR@10'] == pytest.approx(1.0)
    assert res['num_gts'] == len(coco['annotations'])
    shifted = {k: v + np.array([3, 3, 3, 3]) for k, v in perfect.items()}
    ar = average_recall(shifted, coco)['AR@100']
    assert 0 < ar < 1
    assert average_recall({}, coco)['AR@1000'] == 0
    # a duplicate box cannot recall two ground truths
    img = next(k for k, v in gts.items() if len(v) >= 2)
    one = {img: np.asarray([gts[img][0]] * 5)}
    sub = dict(coco, images=[im for im in coco['images'] if im['id'] == img])
    res = average_recall(one, sub)
    assert res['AR@10'] == pytest.approx(1 / len(gts[img]))
    # max_dets cuts by score
    props = {img: dict(bboxes=np.asarray(gts[img]),
                       scores=np.arange(len(gts[img]), dtype=float))}
    res = average_recall(props, sub, max_dets=(1, ))
    assert res['AR@1'] == pytest.approx(1 / len(gts[img]))
