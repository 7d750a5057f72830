# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/engine/hooks/bad_image_summary_hook.py
"""Bad data at scale: corrupt / truncated / empty / non-image files are
skipped, counted and listed per epoch (dataloader workers included) or fail
the run by config; odd-mode images train; a proposal file made for other
images is refused before training starts."""
import glob
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.runner import Runner

from mmselfdet.datasets import UnlabeledDataset
from mmselfdet.datasets.proposals import save_proposal_file
from mmselfdet.datasets.transforms import LoadImageRobust

from ..utils import REPO, write_random_images
from .helpers import env, reliability_config


def _bad_set(folder):
    """Write the bad and the odd-mode files; return (bad, odd) paths."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    ok, jpg = cv2.imencode('.jpg', img)
    ok, png = cv2.imencode('.png', img)
    bad = {
        'b_empty.jpg': b'',
        'b_truncated.jpg': jpg.tobytes()[:len(jpg) // 2],
        'b_truncated.png': png.tobytes()[:len(png) // 2],
        'b_random_bytes.jpg': rng.integers(0, 255, 3000,
                                           dtype=np.uint8).tobytes(),
        'b_text.png': b'this is not an image\n',
    }
    for name, data in bad.items():
        with open(osp.join(folder, name), 'wb') as f:
            f.write(data)
    odd = {
        'o_gray.jpg': img[..., 0],
        'o_gray.png': img[..., 1],
        'o_rgba.png': np.dstack([img, img[..., :1]]),
        'o_16bit.png': img.astype(np.uint16) * 257,
    }
    for name, im in odd.items():
        cv2.imwrite(osp.join(folder, name), im)
    return ({osp.join(folder, n) for n in bad},
            {osp.join(folder, n) for n in odd})


def test_bad_files_skipped_counted_and_listed(tmp_path):
    imgs = write_random_images(str(tmp_path / 'imgs'), n=24)
    bad, odd = _bad_set(imgs)
    work = str(tmp_path / 'work')
    # 33 files, batch 4: 8 iterations per epoch; 16 iterations = 2 epochs
    cfg = reliability_config(imgs, work, max_iters=16, ckpt_interval=16,
                             num_workers=2)
    res = subprocess.run([sys.executable, 'tools/train.py', cfg], cwd=REPO,
                         capture_output=True, text=True, env=env(),
                         timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert osp.isfile(osp.join(work, 'iter_16.pth'))
    summaries = [ln for ln in out.splitlines()
                 if 'BadImageSummaryHook:' in ln]
    assert any('epoch 1 (iteration 8)' in s for s in summaries), summaries
    assert any('epoch 2 (iteration 16)' in s for s in summaries), summaries
    final = [s for s in summaries if 'end of training' in s][-1]
    print(final)
    assert f'{len(bad)} distinct bad files' in final
    for path in bad:
        assert path in final
    for path in odd:
        assert path not in out  # odd modes load: never skipped
    tsv = glob.glob(osp.join(work, '*', 'bad_images.tsv'))[0]
    rows = [ln.rstrip('\n').split('\t') for ln in open(tsv)]
    assert {r[0] for r in rows} == bad
    # every skip counted: the total is the sum of the per-file counts
    total = int(final.split(' in total')[0].rsplit(' ', 1)[-1])
    assert total == sum(int(r[2]) for r in rows) >= len(bad)


def test_fail_policy_stops_naming_the_file(tmp_path):
    """on_error='fail' in the config's loader stops the run naming the file
    (bad_images='fail' only checks that the loader says so)."""
    imgs = write_random_images(str(tmp_path / 'imgs'), n=8)
    with open(osp.join(imgs, 'broken.jpg'), 'wb') as f:
        f.write(b'\xff\xd8 not really a jpeg')
    cfg = Config.fromfile(reliability_config(imgs, str(tmp_path / 'w'),
                                             max_iters=4))
    ds = cfg.train_dataloader.dataset
    assert ds.pipeline[0] == dict(type='LoadImageRobust', on_error='skip')
    ds.pipeline[0].on_error = 'fail'
    ds.bad_images = 'fail'
    with pytest.raises(OSError, match='broken.jpg'):
        Runner.from_cfg(cfg).train()


def _image_loaders(dataset_cfg):
    """The first transform of every pipeline in a dataset config (wrappers
    such as MultiImageMixDataset included): the image loaders."""
    found = []
    if dataset_cfg.get('pipeline'):
        found.append(dataset_cfg['pipeline'][0])
    if isinstance(dataset_cfg.get('dataset'), dict):
        found += _image_loaders(dataset_cfg['dataset'])
    return found


PRETRAIN_CONFIGS = sorted(
    c for c in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    if '/benchmarks/' not in c and '/simdetr/' not in c
    and '/_base_/' not in c)


def test_robust_loader_gives_the_stock_pixels(tmp_path):
    """Every pretraining config names LoadImageRobust(on_error='skip') as
    its image loader (nothing is swapped in at build time), and that loader
    decodes good files to the stock LoadImageFromFile's pixels."""
    assert len(PRETRAIN_CONFIGS) >= 20
    robust = dict(type='LoadImageRobust', on_error='skip')
    for path in PRETRAIN_CONFIGS:
        cfg = Config.fromfile(path)
        loaders = _image_loaders(cfg.train_dataloader.dataset)
        # InsLoc: the mix wrapper's own pipeline starts with the composite
        assert robust in loaders, (path, loaders)
        assert not any(t['type'] == 'LoadImageFromFile' for t in loaders), path
    imgs = write_random_images(str(tmp_path / 'imgs'), n=2)
    _, odd = _bad_set(imgs)
    for path in sorted(glob.glob(osp.join(imgs, '0*.jpg'))) + sorted(
            p for p in odd if '16bit' not in p):
        a = LoadImageFromFile()(dict(img_path=path))['img']
        b = LoadImageRobust()(dict(img_path=path))['img']
        assert np.array_equal(a, b), path
    # the tests' tiny config (tests/utils.py) names it too
    cfg = Config.fromfile(reliability_config(imgs, str(tmp_path / 'w')))
    assert _image_loaders(cfg.train_dataloader.dataset) == [robust]
    ds = UnlabeledDataset(data_root=imgs, pipeline=[robust])
    assert type(ds.pipeline.transforms[0]) is LoadImageRobust
    assert ds.pipeline.transforms[0].on_error == 'skip'
    with pytest.raises(ValueError, match='bad_images'):
        UnlabeledDataset(data_root=imgs, bad_images='ignore')


def test_proposal_file_of_other_images_refused_before_training(tmp_path):
    imgs = write_random_images(str(tmp_path / 'imgs'), n=8)
    # a proposal file made for another folder that shares 2 names
    names = ['000.jpg', '001.jpg'] + [f'other_{i}.jpg' for i in range(6)]
    images = [dict(id=i, file_name=n, width=56, height=48)
              for i, n in enumerate(names)]
    props = str(tmp_path / 'props.json')
    save_proposal_file(props, images,
                       {i: dict(bboxes=[[0, 0, 20, 20]]) for i in range(8)},
                       {})
    cfg = Config.fromfile(reliability_config(imgs, str(tmp_path / 'w'),
                                             max_iters=2))
    cfg.train_dataloader.dataset.proposal_file = props
    with pytest.raises(ValueError,
                       match=r'does not match the dataset: 6 of 8 images'):
        Runner.from_cfg(cfg).train()
    assert not glob.glob(str(tmp_path / 'w' / '*' / 'vis_data' / '*.json'))


def test_hook_old_import_path_and_registry():
    """The hook lives in engine/hooks/; engine/bad_data.py re-exports it and
    the config name builds the same class."""
    from mmselfdet.engine import BadImageSummaryHook, bad_data, hooks
    from mmselfdet.registry import HOOKS
    assert bad_data.BadImageSummaryHook is hooks.BadImageSummaryHook
    assert BadImageSummaryHook is hooks.BadImageSummaryHook
    assert BadImageSummaryHook.__module__.endswith(
        'engine.hooks.bad_image_summary_hook')
    hook = HOOKS.build(dict(type='BadImageSummaryHook', max_listed=3))
    assert type(hook) is BadImageSummaryHook and hook.max_listed == 3
