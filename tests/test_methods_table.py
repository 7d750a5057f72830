# Copyright (c) mmselfdet contributors. All rights reserved.
"""The one method table (mmselfdet/methods.py): its rows agree with the
configs they name, every consumer (toy benchmark, own-data pretraining,
exporter) is derived from it, and a contradictory table is refused."""
import ast
import os.path as osp

import pytest

from mmselfdet import methods as table
from mmselfdet.benchmarks import methods as toy
from mmselfdet.export import exporter
from mmselfdet.export.transfer import TRANSFER_SETS
from mmselfdet.pretrain import common as own
from .utils import REPO


def _pretrain_dict(path: str):
    """The literal ``pretrain = dict(...)`` of a benchmark config (read
    from the file's syntax tree, without loading its bases), or None."""
    with open(osp.join(REPO, path)) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], 'id', None) == 'pretrain'):
            return {k.arg: ast.literal_eval(k.value)
                    for k in node.value.keywords}
    return None


def test_exporter_defaults_by_model_type_come_from_the_table():
    assert exporter.DEFAULT_DOWNSTREAM is table.DEFAULT_DOWNSTREAM
    bench = 'configs/benchmarks/{}/mask-rcnn_r50_fpn_ms-1x_coco.py'
    assert table.DEFAULT_DOWNSTREAM == {
        'MoCoV2': bench.format('mocov2'), 'BYOL': bench.format('byol'),
        'DetCo': bench.format('detco'), 'InsLoc': bench.format('insloc'),
        'SoCo': bench.format('soco'),
        'DETR': 'configs/benchmarks/detr-pretrain/detr_r50_8xb2-150e_coco.py',
        'DeformableDETR': 'configs/benchmarks/detr-pretrain/'
        'deformable-detr_r50_16xb2-50e_coco.py'}
    # every model type of the table exports without --downstream-config
    types = {m.model_type for m in table.METHODS.values()}
    assert types == set(table.DEFAULT_DOWNSTREAM)
    assert types <= set(TRANSFER_SETS)


def test_rows_agree_with_the_configs_they_name():
    """Paths exist; a detector config that declares the export it loads
    (its ``pretrain`` dict) names the row's model type, and the row that
    sets the exporter's default is the paper config it was made for
    (tests/test_benchmarks checks that config's model.type)."""
    for name, m in table.METHODS.items():
        assert m.name == name
        paths = [m.toy_config, m.paper_config, m.downstream, m.benchmark]
        for p in filter(None, paths):
            assert osp.isfile(osp.join(REPO, p)), (name, p)
        for p in filter(None, [m.downstream, m.benchmark]):
            pre = _pretrain_dict(p)
            if pre is not None:
                assert pre['method'] == m.model_type, (name, p)
        if m.benchmark:
            assert _pretrain_dict(m.benchmark)['config'] == m.paper_config
        if not m.paper_config:  # soco-gtboxes: only the toy config says
            from mmengine.config import Config
            cfg = Config.fromfile(osp.join(REPO, m.toy_config))
            assert cfg.model.type == m.model_type, name
    # a SoCo checkpoint with no --downstream-config: the SoCo benchmark
    assert exporter.DEFAULT_DOWNSTREAM['SoCo'] == \
        table.METHODS['soco-ss'].downstream


def test_consumers_are_views_of_the_table():
    rows = table.METHODS
    # toy benchmark: the rows with a toy config, in table order
    assert list(toy.METHODS) == [n for n, m in rows.items() if m.toy_config]
    for name, t in toy.METHODS.items():
        m = rows[name]
        assert (t.config, t.object_level, t.pipeline, t.label) == (
            m.toy_config, m.object_level, m.pipeline, m.label)
        want = m.toy_prepare and (m.toy_prepare.toy[0],
                                  list(m.toy_prepare.toy[1]))
        assert t.prepare == (want or None)
    # the toy objcrop rows crop around ground-truth boxes; SoCo-ss needs
    # its selective-search file on the toy data too
    assert toy.METHODS['mocov2-objcrop'].prepare is None
    assert toy.METHODS['soco-ss'].prepare[0] == \
        'proposals/ss_fast_unlabeled.json'
    assert toy.RENAMED is table.RENAMED
    # own-data pretraining: the rows with a paper config
    assert set(own.METHODS) == {n for n, m in rows.items() if m.paper_config}
    assert 'soco-gtboxes' not in own.METHODS
    for name, o in own.METHODS.items():
        m = rows[name]
        assert o.config == m.paper_config and o.downstream == m.downstream
        assert o.prepare == (m.prepare.kind if m.prepare else None)
        assert o.needs_backbone == (o.prepare == 'detr_stages')


def test_a_contradictory_table_is_refused(monkeypatch):
    row = table.METHODS['mocov2']
    twice = table._ROWS + (table.Method(
        'mocov2-copy', 'copy', 'MoCoV2', benchmark=row.benchmark), )
    monkeypatch.setattr(table, '_ROWS', twice)
    with pytest.raises(ValueError, match='more than one row declares the '
                       r'benchmark of a model_type'):
        table._check_table()
    half = table._ROWS[:1] + (table.Method(
        'half', 'half', 'MoCoV2', paper_config=row.paper_config), )
    monkeypatch.setattr(table, '_ROWS', half)
    with pytest.raises(ValueError, match="'half' has a paper_config but no"):
        table._check_table()
