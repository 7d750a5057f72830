# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/pretrain.py: own images -> derived paper config -> preparation ->
training -> export, end to end on toy images with tiny budgets, the
budget and lr rules with exact values, and bad input."""
import json
import math
import os
import os.path as osp
import re
import shutil
import sys

import pytest
import torch
from mmengine.config import Config

from mmselfdet import pretrain as pt
from ..test_configs_lr import used_lrs
from ..utils import REPO, load_tool

RETINA_R18 = 'configs/benchmarks/retinanet_r18_fpn_1xb8-12e_toy.py'
# R18, 64 px views, queue 8, 2 images per step (paper pipelines otherwise)
TINY = ['--iters', '2', '--batch-size', '2', '--workers', '0',
        '--downstream-config', RETINA_R18, '--cfg-options',
        'model.backbone.depth=18', 'model.neck.in_channels=512',
        'model.queue_len=8']


@pytest.fixture(scope='module')
def imgs(toy_root, tmp_path_factory):
    """A folder of 4 toy images (in a sub-folder: the scan is recursive)."""
    root = tmp_path_factory.mktemp('own')
    src = osp.join(toy_root, 'unlabeled')
    os.makedirs(root / 'a')
    for name in sorted(os.listdir(src))[:4]:
        shutil.copy(osp.join(src, name), root / 'a' / name)
    return str(root)


def _lines(text, prefix):
    return [ln.strip() for ln in text.splitlines()
            if ln.strip().startswith(prefix)]


def _check_export_loads(summary, ckpt_prefix='backbone.'):
    """The export loads into the printed detector config: every exported
    tensor is a detector key of the same shape, it covers the detector's
    whole backbone, and after loading the detector holds exactly the
    pretrained weights."""
    from mmselfdet.export import load_checkpoint_file
    from mmselfdet.registry import MODELS
    exported = torch.load(summary['exported'])['state_dict']
    pre = load_checkpoint_file(summary['checkpoint'])['state_dict']
    det = MODELS.build(Config.fromfile(summary['downstream_config']).model)
    det_sd = det.state_dict()
    assert set(exported) == {k for k in det_sd if k.startswith('backbone.')}
    assert all(det_sd[k].shape == v.shape for k, v in exported.items())
    res = det.load_state_dict(exported, strict=False)
    assert not res.unexpected_keys
    after = det.state_dict()
    for k in exported:
        assert torch.equal(after[k], pre[ckpt_prefix + k[len('backbone.'):]])
    assert summary['matched'] == len(exported)


def test_derive_budget_exact():
    img, coco = pt.IMAGENET_1K, pt.COCO_TRAIN
    # small set: the paper's images seen would be 256k epochs -> cap 4 x 200
    n, why = pt.derive_budget(1000, 32, 200, img)
    assert n == 800 * 1000 // 32 and 'capped at 4 x 200 = 800' in why[1]
    # a set larger than the paper's: same images seen (fewer epochs)
    n, _ = pt.derive_budget(10 * img, 256, 200, img)
    assert n == math.ceil(200 * img / 256) == 1000912
    # COCO-sized SimDETR set at 16 x 2: the paper's 50 epochs exactly
    n, _ = pt.derive_budget(coco, 32, 50, coco)
    assert n == math.ceil(50 * coco / 32)
    # floors: one epoch, MIN_ITERS iterations
    n, why = pt.derive_budget(10 ** 9, 256, 200, img)
    assert n == math.ceil(10 ** 9 / 256) and 'floored at 1 epoch' in why[1]
    n, why = pt.derive_budget(4, 32, 200, img)
    assert n == pt.MIN_ITERS == 200 and 'floored at 200' in why[-1]
    # overrides
    assert pt.derive_budget(1000, 32, 200, img, epochs=3)[0] == 94
    assert pt.derive_budget(1000, 32, 200, img, iters=7)[0] == 7


def test_method_table_points_at_real_configs():
    from mmselfdet import quickstart
    for name, m in pt.METHODS.items():
        assert osp.isfile(osp.join(REPO, m.config)), name
        assert osp.isfile(osp.join(REPO, m.downstream)), name
        want = pt.IMAGENET_1K if m.config.endswith('_in1k.py') else \
            pt.COCO_TRAIN
        assert m.paper_images == want, name
    # the toy table's names, except SoCo on ground-truth boxes (named
    # 'soco' or 'soco-gtboxes' there): own images have no boxes
    assert set(quickstart.METHODS) - {'soco', 'soco-gtboxes'} <= \
        set(pt.METHODS)


def test_mocov2_end_to_end(imgs, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    work = str(tmp_path / 'w')
    s = pt.main(['mocov2', '--images', imgs, '--work-dir', work] + TINY + [
        'train_dataloader.dataset.pipeline.2.view1.0.scale=64',
        'train_dataloader.dataset.pipeline.2.view2.0.scale=64'])
    out = capfd.readouterr().out
    for i, stage in enumerate(['images', 'config', 'train', 'export'], 1):
        assert re.search(rf'==> \[{i}\] {stage}', out), stage
    assert len(re.findall(r'done in [\d.]+ s', out)) == 4
    assert s['images'] == 4 and s['unreadable'] == 0 and s['iters'] == 2
    assert s['checkpoint'] == osp.join(work, 'iter_2.pth')
    # the derived config is the one that ran, and is kept in the work dir
    cfg = Config.fromfile(s['config'])
    assert osp.dirname(s['config']) == work
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=2)
    assert cfg.model.backbone.depth == 18
    assert cfg.train_dataloader.dataset.ann_file == s['images_json']
    ckpt = torch.load(s['checkpoint'], weights_only=False)
    assert ckpt['meta']['iter'] == 2
    # 2 steps x 2 images x 1 key entered the queue of 8
    assert int(ckpt['state_dict']['queue.ptr'][0]) == 4
    # the printed load_from line names the export and the detector config
    tail = out[out.index('Fine-tune a detector from it'):]
    assert _lines(tail, 'load_from = ') == [f"load_from = '{s['exported']}'"]
    assert f'tools/train.py {s["downstream_config"]} --cfg-options ' \
        f'load_from={s["exported"]}' in out
    assert s['downstream_config'] == osp.join(REPO, RETINA_R18)
    _check_export_loads(s)


def test_objcrop_selective_search_end_to_end(imgs, tmp_path, capfd,
                                             monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    work = str(tmp_path / 'w')
    s = pt.main(['mocov2-objcrop', '--images', imgs, '--work-dir', work,
                 '--prepare-args', '--max-side 96'] + TINY +
                ['train_dataloader.dataset.pipeline.2.out_size=64'])
    out = capfd.readouterr().out
    assert re.search(r'==> \[3\] selective-search proposals', out)
    props = osp.join(work, 'data', 'proposals_ss.json')
    with open(props) as f:
        made = json.load(f)
    with open(s['images_json']) as f:
        listed = json.load(f)['images']
    # proposals for exactly the checked images, matched by COCO id
    assert sorted((im['id'], im['file_name']) for im in made['images']) == \
        sorted((im['id'], im['file_name']) for im in listed)
    assert made['info']['parameters']['max_side'] == 96
    cfg = Config.fromfile(s['config'])
    assert cfg.train_dataloader.dataset.proposal_file == props
    logs = [osp.join(d, f) for d, _, fs in os.walk(work) for f in fs
            if f.endswith('.log')]
    text = ''.join(open(p).read() for p in logs)
    assert f'proposals from {props}: 4 images, 0 absent' in text
    _check_export_loads(s)


def test_preparation_step_resumes_and_reruns(tmp_path, capfd):
    images = tmp_path / 'images.json'
    images.write_text('{"images": [1]}')
    out, count = str(tmp_path / 'p' / 'out.json'), tmp_path / 'count'
    cmd = [sys.executable, '-c',
           f'import os; open({out!r}, "w").write("x"); '
           f'open({str(count)!r}, "a").write("1")']
    pt.run_step(cmd, out, str(images))
    pt.run_step(cmd, out, str(images))  # same command and images: skipped
    assert count.read_text() == '1'
    assert 'skipped' in capfd.readouterr().out
    images.write_text('{"images": [1, 2]}')  # another image list: rerun
    pt.run_step(cmd, out, str(images))
    assert count.read_text() == '11'
    with pytest.raises(SystemExit, match='rerun the same command'):
        pt.run_step([sys.executable, '-c', 'raise SystemExit(3)'],
                    str(tmp_path / 'q.json'), str(images))


def _dry(method, imgs, work, *extra):
    return pt.main([method, '--images', imgs, '--work-dir', work,
                    '--dry-run', '--workers', '0'] + list(extra))


def test_lr_rule_and_budget_one_process_and_torchrun(toy_root, tmp_path,
                                                     capfd):
    unl = osp.join(toy_root, 'unlabeled')  # 48 images
    s = _dry('mocov2', unl, str(tmp_path / 'a'))
    cfg = Config.fromfile(s['config'])
    # 48 images: capped at 800 epochs; 1 process x 32 images per step
    assert s['iters'] == math.ceil(800 * 48 / 32) == 1200
    sch = cfg.param_scheduler[0]
    assert (sch.begin, sch.end, sch.T_max, sch.by_epoch) == (0, 1200, 1200,
                                                             False)
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    # lr 0.03 is for 8 x 32; mmengine scales it to 1 x 32
    assert cfg.optim_wrapper.optimizer.lr == 0.03
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=256)
    assert used_lrs(cfg, 1, False) == pytest.approx([0.03 * 32 / 256])
    out = capfd.readouterr().out
    assert 'scaled linearly to 0.03 x 32/256 = 0.00375' in out
    assert not osp.exists(osp.join(str(tmp_path / 'a'), 'iter_1.pth'))
    # the declared launch (8 processes x 32): the lr as written
    s = _dry('mocov2', unl, str(tmp_path / 'b'), '--gpus', '8')
    cfg = Config.fromfile(s['config'])
    assert cfg.auto_scale_lr.enable is False
    assert used_lrs(cfg, 8, False) == pytest.approx([0.03])
    # 800 epochs x 48 / 256 = 150 steps, floored at MIN_ITERS
    assert s['iters'] == pt.MIN_ITERS == 200
    assert re.search(r'tools/dist_train\.sh \S+pretrain_mocov2\.py 8 '
                     r'--work-dir \S+/b$', s['train'])


def test_slurm_dry_run_soco_schedule(toy_root, tmp_path, capfd):
    s = _dry('soco-ss', osp.join(toy_root, 'unlabeled'), str(tmp_path),
             '--launcher', 'slurm', '--partition', 'gpu', '--gpus', '16')
    assert s['train'].startswith(
        'GPUS=16 GPUS_PER_NODE=8 bash ' + osp.join(REPO, 'tools',
                                                   'slurm_train.sh') +
        ' gpu pretrain-soco-ss ' + s['config'] + ' ' + str(tmp_path))
    cfg = Config.fromfile(s['config'])
    # 16 x 32 = 512 images per step vs the declared 256: lr 1.0 -> 2.0
    assert used_lrs(cfg, 16, False) == pytest.approx([2.0])
    # 100 paper epochs -> cap 400 epochs of 48 images at 512 per step = 38
    # steps, floored at 200; 10 warm-up epochs of 100 -> 20 steps
    assert s['iters'] == 200
    warm, cos = cfg.param_scheduler
    assert (warm.type, warm.begin, warm.end) == ('LinearLR', 0, 20)
    assert (cos.begin, cos.end, cos.T_max) == (20, 200, 180)
    assert 'convert_to_iter_based' not in warm
    # SLURM: GPUs, AMP as the config has it (with the non-finite guard)
    assert cfg.optim_wrapper.type == 'NonFiniteGuardAmpOptimWrapper'
    props = osp.join(str(tmp_path), 'data', 'proposals_ss.json')
    assert cfg.train_dataloader.dataset.proposal_file == props
    assert 'generate_proposals.py' in s['prepare'][0]
    assert not osp.exists(props)  # a dry run prepares nothing
    out = capfd.readouterr().out
    assert 'dry run' in out and 'slurm_train.sh gpu' in out


def test_simdetr_dry_run(toy_root, tmp_path):
    work = str(tmp_path / 'w')
    back = str(tmp_path / 'backbone.pth')
    s = _dry('simdetr', osp.join(toy_root, 'unlabeled'), work,
             '--backbone', back)
    cfg = Config.fromfile(s['config'])
    labels = osp.join(work, 'data', 'simdetr', 'pseudo_labels_k256.json')
    ds = cfg.train_dataloader.dataset
    assert ds.ann_file == labels and len(ds.metainfo.classes) == 256
    assert ds.data_prefix.img == osp.join(toy_root, 'unlabeled') + os.sep
    assert cfg.model.bbox_head.num_classes == 256
    assert cfg.model.backbone.init_cfg.checkpoint == back
    # 50 COCO epochs at 16 x 2 -> cap 200 epochs of 48 images at 1 x 2
    assert s['iters'] == 200 * 48 // 2 == 4800
    assert cfg.param_scheduler[0].milestones == [3840]  # epoch 40 of 50
    assert cfg.train_cfg.type == 'SelfTrainingLoop'  # rounds kept
    assert cfg.train_cfg.interval == 2400  # epoch 25
    a, b = s['prepare']
    assert 'make_proposals.py' in a and f'--checkpoint {back}' in a
    assert '--arch resnet50' in a
    assert 'cluster_pseudo_labels.py' in b and '--num-classes 256' in b
    with pytest.raises(SystemExit):
        pt.parse_args(['simdetr', '--images', toy_root, '--work-dir', work])


def test_simdetr_detr_dry_run(imgs, tmp_path):
    """The stock-DETR row of the method table: the same stages A-B and
    pseudo-label dataset, DETR's 150-epoch schedule stretched, its own
    fine-tuning config."""
    work, back = str(tmp_path / 'w'), str(tmp_path / 'backbone.pth')
    s = _dry('simdetr-detr', imgs, work, '--backbone', back)
    cfg = Config.fromfile(s['config'])
    assert cfg.model.type == 'DETR' and cfg.model.bbox_head.num_classes == 256
    assert cfg.train_dataloader.dataset.ann_file == osp.join(
        work, 'data', 'simdetr', 'pseudo_labels_k256.json')
    assert cfg.model.backbone.init_cfg.checkpoint == back
    # 150 COCO epochs at 8 x 2 -> cap 600 epochs of 4 images at 1 x 2
    assert s['iters'] == 600 * 4 // 2 == 1200
    assert cfg.param_scheduler[0].milestones == [800]  # epoch 100 of 150
    assert cfg.train_cfg.type == 'SelfTrainingLoop'  # rounds kept
    assert cfg.train_cfg.interval == 600  # epoch 75
    a, b = s['prepare']
    assert 'make_proposals.py' in a and f'--checkpoint {back}' in a
    assert 'cluster_pseudo_labels.py' in b
    assert s['downstream_config'] == osp.join(
        REPO, 'configs/simdetr/detr_r50_8xb2-150e_coco-ft.py')
    with pytest.raises(SystemExit):
        pt.parse_args(['simdetr-detr', '--images', imgs, '--work-dir', work])


def test_tool_is_the_package_command_line():
    """tools/pretrain.py only runs mmselfdet.pretrain's main."""
    assert load_tool('tools/pretrain.py').main is pt.main


def test_every_method_without_preparation_reads_the_images(imgs, tmp_path):
    """The derived config of every method without a preparation step
    builds a dataset of exactly the user's images (inside InsLoc's
    MultiImageMixDataset too) that yields the method's views."""
    from mmselfdet.registry import DATASETS
    views = dict(mocov2={'view1', 'view2'}, byol={'view1', 'view2'},
                 insloc={'query', 'key'}, soco_e2e={'v1', 'v2', 'v3', 'raw'},
                 detco={'view1', 'view2', 'local1', 'local2'})
    files = sorted(osp.join(imgs, 'a', n)
                   for n in os.listdir(osp.join(imgs, 'a')))
    for name, want in views.items():
        method = name.replace('_', '-')
        assert pt.METHODS[method].prepare is None
        s = _dry(method, imgs, str(tmp_path / name))
        cfg = Config.fromfile(s['config'])
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        inner = getattr(ds, 'dataset', ds)
        inner.full_init()
        assert sorted(inner.get_data_info(i)['img_path']
                      for i in range(len(inner))) == files, method
        assert set(ds[0]['inputs']) == want, method
        if method == 'byol':  # 4.8 for 16 x 256; 1 x 256 -> 0.3
            assert used_lrs(cfg, 1, False) == pytest.approx([0.3])
        if method == 'soco-e2e':  # AMP needs CUDA: fp32 on a CPU machine,
            # the non-finite guard kept
            assert cfg.optim_wrapper.type == (
                'NonFiniteGuardAmpOptimWrapper' if torch.cuda.is_available()
                else 'NonFiniteGuardOptimWrapper')
            assert ('loss_scale' in cfg.optim_wrapper) == \
                torch.cuda.is_available()


def test_empty_and_missing_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('x')
    with pytest.raises(SystemExit, match=r'empty" holds no image'):
        _dry('mocov2', str(tmp_path / 'empty'), str(tmp_path / 'w'))
    with pytest.raises(SystemExit, match=r'"\S+nope" does not exist'):
        _dry('mocov2', str(tmp_path / 'nope'), str(tmp_path / 'w'))


def test_unreadable_images_listed_and_left_out(imgs, tmp_path, capfd):
    d = tmp_path / 'mixed'
    shutil.copytree(imgs, d)
    good = sorted(osp.relpath(osp.join(r, f), d) for r, _, fs in os.walk(d)
                  for f in fs)
    data = open(osp.join(d, good[0]), 'rb').read()
    (d / 'cut.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    (d / 'empty.jpg').write_bytes(b'')
    (d / 'text.jpg').write_text('not an image')
    (d / 'z_trunc.jpg').write_bytes(data[:len(data) // 2])
    s = _dry('mocov2', str(d), str(tmp_path / 'w'))
    assert (s['images'], s['unreadable']) == (4, 4)
    with open(s['images_json']) as f:
        assert [im['file_name'] for im in json.load(f)['images']] == good
    rows = open(osp.join(tmp_path, 'w', 'data', 'bad_images.tsv')).read()
    bad = sorted(ln.split('\t')[0] for ln in rows.splitlines())
    assert bad == [str(d / n) for n in ('cut.png', 'empty.jpg', 'text.jpg',
                                        'z_trunc.jpg')]
    assert '4 readable, 4 unreadable' in capfd.readouterr().out
    for name in good:
        os.remove(d / name)
    with pytest.raises(SystemExit, match=r'none of the 4 images .* can be '
                       r'read \(listed in \S+bad_images.tsv\)'):
        _dry('mocov2', str(d), str(tmp_path / 'w2'))


def test_coco_json_with_missing_images(imgs, tmp_path):
    names = sorted(os.listdir(osp.join(imgs, 'a')))
    images = [dict(id=i + 1, file_name=f'a/{n}') for i, n in enumerate(names)]
    images += [dict(id=10 + i, file_name=f'gone/{i}.jpg') for i in range(7)]
    ann = tmp_path / 'coco.json'
    ann.write_text(json.dumps(dict(images=images, annotations=[])))
    with pytest.raises(SystemExit) as e:
        pt.main(['mocov2', '--ann-file', str(ann), '--images', imgs,
                 '--work-dir', str(tmp_path / 'w'), '--dry-run'])
    msg = str(e.value)
    assert f'7 of the 11 images listed in "{ann}" do not exist' in msg
    assert "'gone/0.jpg', 'gone/1.jpg'" in msg and 'gone/5.jpg' not in msg
    # the same json with the images there: ids are kept
    ann.write_text(json.dumps(dict(images=images[:4])))
    s = pt.main(['mocov2', '--ann-file', str(ann), '--images', imgs,
                 '--work-dir', str(tmp_path / 'w'), '--dry-run'])
    with open(s['images_json']) as f:
        assert [im['id'] for im in json.load(f)['images']] == [1, 2, 3, 4]
    ann.write_text(json.dumps(dict(annotations=[])))
    with pytest.raises(SystemExit, match='not a COCO json'):
        pt.main(['mocov2', '--ann-file', str(ann), '--work-dir',
                 str(tmp_path / 'w'), '--dry-run'])
