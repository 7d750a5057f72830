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
