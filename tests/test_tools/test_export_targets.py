# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/export_checkpoint.py from the command line: the per-module key
report is always printed, --strict makes a mismatch a non-zero exit, and
the detectron2 target writes the .pkl its checkpointer reads."""
import os
import subprocess
import sys

from mmselfdet.export import load_detectron2_pkl
from ..test_export.conftest import save_pretrain_checkpoint
from ..utils import REPO

FPN = 'configs/benchmarks/insloc/mask-rcnn_r50_fpn_ms-1x_coco.py'
C4 = 'configs/benchmarks/insloc/mask-rcnn_r50_c4_ms-1x_coco.py'


def _run(*args):
    return subprocess.run(
        [sys.executable, 'tools/export_checkpoint.py', *args], cwd=REPO,
        capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))


def test_cli_report_strict_and_detectron2(tmp_path):
    ckpt = str(tmp_path / 'insloc.pth')
    save_pretrain_checkpoint(
        'configs/insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py', ckpt)
    out = str(tmp_path / 'insloc.pkl')
    res = _run(ckpt, out, '--target', 'detectron2', '--downstream-config',
               FPN, '--strict')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = res.stdout.splitlines()
    # one row per transferred module, then the totals
    for mod in ('backbone', 'neck', 'roi_head.bbox_head'):
        assert any(ln.split()[:1] == [mod] and ln.split()[2:] == ['0'] * 3
                   for ln in lines), (mod, res.stdout)
    assert 'missing 0, unexpected 0, shape-mismatched 0' in res.stdout
    assert 'roi_heads.box_head.fc1.weight' in load_detectron2_pkl(out)['model']
    # the FPN export into the C4 detector: reported, then refused by --strict
    res = _run(ckpt, str(tmp_path / 'x.pth'), '--downstream-config', C4,
               '--strict')
    assert res.returncode != 0
    assert '--strict' in res.stderr and 'unexpected keys' in res.stdout
    assert not os.path.exists(tmp_path / 'x.pth')
