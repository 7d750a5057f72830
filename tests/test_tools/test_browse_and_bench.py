# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/browse_views.py and tools/benchmarks/pipeline_throughput.py, run
as a user runs them (subprocesses) on the MoCo v2 toy config and the small
session toy set."""
import os
import os.path as osp
import re
import subprocess
import sys

from ..utils import REPO, TOY_MOCO


def _run(cmd, timeout=60):
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=timeout)


def _data_root_option(toy_root):
    return ['--cfg-options',
            f'train_dataloader.dataset.data_root={toy_root}/']


def test_browse_views_writes_a_small_png(toy_root, tmp_path):
    import cv2
    out = str(tmp_path / 'views.png')
    res = _run([sys.executable, 'tools/browse_views.py', TOY_MOCO, '--num',
                '2', '--out', out, '--seed', '1',
                *_data_root_option(toy_root)])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert out in res.stdout
    assert osp.isfile(out) and 0 < osp.getsize(out) < 250_000
    img = cv2.imread(out)
    assert img is not None
    h, w = img.shape[:2]
    # 2 rows, original + 2 views: wider than one panel, taller than wide
    assert 300 <= w <= 2000 and 250 <= h <= 2000, (w, h)
    assert img.std() > 10  # not a blank canvas


def test_pipeline_throughput_prints_positive_rates(toy_root, tmp_path):
    md = tmp_path / 'bench.md'
    md.write_text('# Benchmarks\n\n## Selective search\n\nother text\n')
    res = _run([sys.executable, 'tools/benchmarks/pipeline_throughput.py',
                TOY_MOCO, '--num-images', '8', '--batch-size', '4',
                '--warmup', '2', '--workers', '0', '1', '--out-md', str(md),
                *_data_root_option(toy_root)])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rates = {}
    for line in res.stdout.splitlines():
        m = re.match(r'(1 process, dataset\[i\] loop|DataLoader, \d+ '
                     r'workers?)\s+([0-9.]+)', line)
        if m:
            rates[m.group(1)] = float(m.group(2))
    assert set(rates) == {'1 process, dataset[i] loop',
                          'DataLoader, 0 workers', 'DataLoader, 1 worker'}, \
        res.stdout
    assert all(v > 0 for v in rates.values()), rates
    text = md.read_text()
    # the other section is untouched, ours follows it
    assert text.startswith('# Benchmarks\n\n## Selective search\n\nother '
                           'text\n')
    assert text.count('## Data pipeline throughput') == 1
    assert '| DataLoader, 1 worker |' in text and 'git commit:' in text


def test_markdown_section_is_replaced_in_place(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'pipeline_throughput',
        osp.join(REPO, 'tools', 'benchmarks', 'pipeline_throughput.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    md = str(tmp_path / 'b.md')
    mod.write_md(md, '### run 1\n\nA\n', 'append')  # file created
    text = open(md).read()
    assert text.startswith('# Benchmarks\n\n## Data pipeline throughput\n')
    with open(md, 'a') as f:
        f.write('\n## Selective search\n\nkeep me\n')
    mod.write_md(md, '### run 2\n\nB\n', 'append')
    text = open(md).read()
    assert text.index('### run 1') < text.index('### run 2') < \
        text.index('## Selective search')
    mod.write_md(md, '### run 3\n\nC\n', 'replace')
    text = open(md).read()
    assert '### run 1' not in text and '### run 2' not in text
    assert text.count('## Data pipeline throughput') == 1
    assert text.index('### run 3') < text.index('## Selective search')
    assert text.rstrip().endswith('keep me')


def test_views_visualizer_draws_boxes_and_footprint_where_they_are():
    """The registered ViewsVisualizer: a view that crops the top-right
    quarter of a 32 px black original (homography x - 16), one box of id 3
    at (4, 4, 12, 12); panels are 64 px, so the original is drawn at scale
    2 from (6, 18) and the view at scale 4 from (76, 18). The footprint's
    left edge (x = 6 + 16 * 2) has the first view colour, the box's left
    edge (x = 76 + 4 * 4) the colour of id 3."""
    import numpy as np
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData

    import mmselfdet.visualization  # noqa: F401
    from mmselfdet.registry import VISUALIZERS
    from mmselfdet.visualization.views_visualizer import (ID_COLOURS,
                                                          VIEW_COLOURS)
    ds = DetDataSample(metainfo=dict(homography_matrix=np.array(
        [[1, 0, -16], [0, 1, 0], [0, 0, 1]], np.float32)))
    ds.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[4., 4., 12., 12.]])),
        instances_ids=torch.tensor([3]))
    sample = dict(inputs={'v': torch.zeros(3, 16, 16, dtype=torch.uint8)},
                  data_samples={'v': ds})
    vis = VISUALIZERS.build(dict(type='ViewsVisualizer', name='test_views',
                                 panel_size=64))
    vis.add_datasample('o', np.zeros((32, 32, 3), np.uint8), sample)
    img = vis.get_image().astype(int)  # RGB
    assert img.shape == (18 + 64 + 6, 6 + 2 * (64 + 6), 3)

    def rgb(hex_colour):
        return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])

    def near(x, y, colour, r=1):
        patch = img[y - r:y + r + 1, x - r:x + r + 1].reshape(-1, 3)
        return np.abs(patch - rgb(colour)).sum(1).min() < 60

    assert near(6 + 32, 18 + 16, VIEW_COLOURS[0])  # footprint, left edge
    assert not near(6 + 16, 18 + 16, VIEW_COLOURS[0], r=3)  # left quarter
    assert near(76 + 16, 18 + 32, ID_COLOURS[3])  # the box, left edge
    assert not near(76 + 32, 18 + 32, ID_COLOURS[3], r=3)  # box inside
    assert 'instances_ids' in vis.legend()
