# Copyright (c) mmselfdet contributors. All rights reserved.
"""Low-data protocol: tools/make_low_data_splits.py writes deterministic,
nested image-id splits (COCO 1/2/5/10 % x 5 seeds, VOC 10 %) that mmdet's
datasets consume as ann_file, and --check catches an edited file;
tools/aggregate_results.py turns run logs into mean +- std tables and a
plot."""
import importlib.util
import json
import os
import os.path as osp
import statistics

import pytest

from ..utils import REPO


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


splits = _tool('make_low_data_splits')
aggregate = _tool('aggregate_results')


@pytest.fixture()
def coco_json(tmp_path):
    """A COCO json of 700 images (ids not contiguous), 2 boxes each."""
    images = [dict(id=7 * i + 3, file_name=f'{i:06d}.jpg', width=64,
                   height=48) for i in range(700)]
    anns = [dict(id=2 * k + j, image_id=im['id'], category_id=1 + j,
                 bbox=[1, 2, 10, 12], area=120, iscrowd=0)
            for k, im in enumerate(images) for j in range(2)]
    path = tmp_path / 'instances_train2017.json'
    path.write_text(json.dumps(dict(
        images=images, annotations=anns, info={}, licenses=[],
        categories=[dict(id=1, name='a'), dict(id=2, name='b')])))
    return str(path)


def test_coco_splits_counts_nesting_and_determinism(coco_json, tmp_path):
    out = str(tmp_path / 'low')
    splits.main(['coco', coco_json, out])
    manifest = json.load(open(osp.join(out, 'manifest.json')))
    assert len(manifest['files']) == 4 * 5 * 2
    ids = {}
    for p in (1, 2, 5, 10):
        for s in range(5):
            rec = json.load(open(osp.join(out, f'ids_{p}pct_seed{s}.json')))
            assert rec['percent'] == p and rec['seed'] == s
            assert rec['source']['num_images'] == 700
            assert len(rec['image_ids']) == round(700 * p / 100)
            ids[p, s] = set(rec['image_ids'])
            sub = json.load(open(osp.join(
                out, f'instances_train2017_{p}pct_seed{s}.json')))
            assert {im['id'] for im in sub['images']} == ids[p, s]
            assert {a['image_id'] for a in sub['annotations']} == ids[p, s]
            assert len(sub['annotations']) == 2 * len(ids[p, s])
            assert len(sub['categories']) == 2
    for s in range(5):  # nested per seed
        assert ids[1, s] < ids[2, s] < ids[5, s] < ids[10, s]
    assert len({frozenset(ids[10, s]) for s in range(5)}) == 5
    # regenerating gives byte-identical files; an edit is caught
    splits.main(['coco', coco_json, out, '--check'])
    edited = osp.join(out, 'ids_5pct_seed2.json')
    with open(edited, 'a') as f:
        f.write(' ')
    with pytest.raises(SystemExit, match='ids_5pct_seed2.json'):
        splits.main(['coco', coco_json, out, '--check'])


def test_voc_10pct_splits(tmp_path):
    root = tmp_path / 'VOCdevkit'
    for year, n in (('VOC2007', 50), ('VOC2012', 150)):
        d = root / year / 'ImageSets' / 'Main'
        d.mkdir(parents=True)
        (d / 'trainval.txt').write_text(
            ''.join(f'{year[-2:]}_{i:06d}\n' for i in range(n)))
    out = str(tmp_path / 'low')
    splits.main(['voc', str(root), out])
    for s in range(5):
        lines = []
        for year in ('VOC2007', 'VOC2012'):
            text = open(osp.join(
                out, f'{year}_trainval_10pct_seed{s}.txt')).read()
            got = text.split()
            assert all(i.startswith(year[-2:] + '_') for i in got)
            lines += got
        assert len(lines) == 20 and len(set(lines)) == 20


def test_split_is_an_mmdet_ann_file(toy_root, tmp_path):
    """The filtered json loads in mmdet's CocoDataset as it stands."""
    from mmdet.datasets import CocoDataset
    out = str(tmp_path / 'low')
    splits.main(['coco', osp.join(toy_root, 'annotations', 'train.json'),
                 out, '--percents', '25', '--seeds', '0'])
    ds = CocoDataset(data_root=toy_root, ann_file=osp.join(
        out, 'train_25pct_seed0.json'), data_prefix=dict(img='train/'),
        pipeline=[], lazy_init=False)
    ids = json.load(open(osp.join(out, 'ids_25pct_seed0.json')))['image_ids']
    assert len(ds) == len(ids) == 4  # 25 % of the 16 toy train images
    assert sorted(ds.get_data_info(i)['img_id'] for i in range(len(ds))) == ids


def _run_log(path, records):
    d = osp.join(path, '20260101_000000', 'vis_data')
    os.makedirs(d)
    with open(osp.join(d, 'scalars.json'), 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')


def test_aggregate_results_tables_and_plot(tmp_path, capsys):
    root = tmp_path / 'runs'
    values = {('mocov2', '1pct'): [0.10, 0.12, 0.14],
              ('mocov2', '10pct'): [0.30, 0.31],
              ('insloc/fpn', '1pct'): [0.20]}
    for (method, split), vals in values.items():
        for seed, v in enumerate(vals):
            _run_log(str(root / method / f'{split}_seed{seed}'),
                     [dict(loss=1.0, step=1),
                      {'coco/bbox_mAP': v / 2, 'step': 1},
                      {'coco/bbox_mAP': v, 'step': 2}])
    # a run that never evaluated is named and left out
    _run_log(str(root / 'mocov2' / '10pct_seed4'), [dict(loss=1.0, step=1)])
    out = str(tmp_path / 'summary')
    aggregate.main([str(root), '--out', out])
    text = capsys.readouterr()
    assert '10pct_seed4' in text.err
    mean = statistics.fmean([10, 12, 14])
    assert f'{mean:.2f} ± 2.00 (n=3)' in text.out
    assert '30.50 ± 0.71 (n=2)' in text.out
    assert '20.00 ± 0.00 (n=1)' in text.out
    md = open(out + '.md').read().splitlines()
    assert md[0].split('|')[2:4] == [' 1pct ', ' 10pct ']  # by percentage
    rows = open(out + '.csv').read().splitlines()
    assert rows[0] == 'method,split,n,mean,std,seeds,values'
    assert 'mocov2,1pct,3,12.0000,2.0000,0 1 2,10.0000 12.0000 14.0000' \
        in rows
    with open(out + '.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
