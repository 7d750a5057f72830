# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: generate_proposals / eval_proposals (evaluation/proposal_recall.py).
"""tools/generate_proposals.py and tools/eval_proposals.py.

Most runs call the tools' ``main`` in-process (the import of torch would
cost seconds per subprocess); one run goes through the command line.
Selective search runs at ``--max-side 96`` on the 96-px toy images.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mmselfdet.datasets.proposals import load_proposal_file

from ..utils import REPO, load_tool


def _tool(name):
    return load_tool(f'tools/{name}.py')


@pytest.fixture(scope='module')
def gen():
    return _tool('generate_proposals')


@pytest.fixture(autouse=True)
def _fixed_stamp(monkeypatch):
    monkeypatch.setenv('SOURCE_DATE_EPOCH', '0')


def _val_args(toy_root, out, *extra):
    return [osp.join(toy_root, 'val'), '--ann-file',
            osp.join(toy_root, 'annotations/val.json'), '--out', str(out),
            '--max-side', '96', *extra]


@pytest.fixture(scope='module')
def reference(gen, toy_root, tmp_path_factory):
    """An unsharded, single-process run over the toy val split."""
    os.environ['SOURCE_DATE_EPOCH'] = '0'
    out = tmp_path_factory.mktemp('ref') / 'val.json'
    assert gen.main(_val_args(toy_root, out, '--min-size', '8')) == 0
    return out


def test_output_is_valid_and_deterministic(gen, toy_root, reference, tmp_path):
    table, info = load_proposal_file(reference)
    coco = json.load(open(osp.join(toy_root, 'annotations/val.json')))
    assert info['num_images'] == len(coco['images'])
    assert info['filters']['min_size'] == 8 and info['mode'] == 'fast'
    assert info['failed_images'] == [] and 'opencv_version' in info
    for im in coco['images']:
        entry = table[im['id']]
        assert entry is table[im['file_name']]
        assert len(entry['bboxes']) > 0
        wh = entry['bboxes'][:, 2:] - entry['bboxes'][:, :2]
        assert (wh >= 8 - 0.01).all()  # the filter ran
        assert (np.diff(entry['scores']) <= 0).all()
    assert not osp.exists(str(reference)[:-5] + '.parts')
    # two workers over three shards: the same bytes
    out2 = tmp_path / 'val2.json'
    assert gen.main(_val_args(toy_root, out2, '--min-size', '8', '--workers',
                              '2', '--shard-size', '3')) == 0
    assert out2.read_bytes() == reference.read_bytes()


def test_shards_merge_to_the_unsharded_file(gen, toy_root, reference,
                                            tmp_path):
    out = tmp_path / 'val.json'
    for i in range(3):
        assert gen.main(_val_args(toy_root, out, '--min-size', '8',
                                  '--shard', f'{i}/3')) == 0
    shards = [str(tmp_path / f'val.shard-{i}-of-3.json') for i in range(3)]
    assert json.load(open(shards[1]))['info']['shard'] == '1/3'
    merged = tmp_path / 'merged.json'
    assert gen.main(['--merge', str(merged), *shards[::-1]]) == 0
    assert merged.read_bytes() == reference.read_bytes()
    with pytest.raises(SystemExit, match='missing'):
        gen.main(['--merge', str(tmp_path / 'x.json'), *shards[:2]])


def test_resume_skips_finished_shards(gen, toy_root, reference, tmp_path,
                                      monkeypatch):
    """A run killed in its second shard keeps the first; the rerun searches
    only the other images and writes the bytes of an uninterrupted,
    single-shard run."""
    out = tmp_path / 'val.json'
    parts = tmp_path / 'val.parts'
    args = _val_args(toy_root, out, '--min-size', '8', '--shard-size', '3')
    real = gen.process_image
    calls = []

    def dies_at_the_fifth(image, cfg):
        if len(calls) == 4:
            raise KeyboardInterrupt  # the run is killed
        calls.append(image['id'])
        return real(image, cfg)

    monkeypatch.setattr(gen, 'process_image', dies_at_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        gen.main(args)
    assert not out.exists()
    assert sorted(os.listdir(parts)) == ['shard-00000.json']  # no temp file
    first = calls[:3]
    # finished shards of other arguments are refused
    with pytest.raises(SystemExit, match='other arguments'):
        gen.main(_val_args(toy_root, out, '--min-size', '9', '--shard-size',
                           '3'))

    calls.clear()
    monkeypatch.setattr(gen, 'process_image',
                        lambda image, cfg: calls.append(image['id']) or
                        real(image, cfg))
    assert gen.main(args) == 0
    ids = [im['id'] for im in json.load(open(reference))['images']]
    assert first == ids[:3] and calls == ids[3:]  # shard 0 not redone
    assert out.read_bytes() == reference.read_bytes()
    assert not parts.exists()


def test_bad_images_are_recorded_not_fatal(gen, tmp_path, toy_root):
    img_dir = tmp_path / 'imgs'
    img_dir.mkdir()
    good = cv2.imread(osp.join(toy_root, 'val', '000000.jpg'))
    cv2.imwrite(str(img_dir / 'color.png'), good)
    cv2.imwrite(str(img_dir / 'gray.png'), cv2.cvtColor(good,
                                                        cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(img_dir / 'rgba.png'),
                cv2.cvtColor(good, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(img_dir / 'deep.png'), good.astype(np.uint16) * 257)
    cv2.imwrite(str(img_dir / 'tiny.png'), good[:3, :2])
    data = cv2.imencode('.jpg', good)[1].tobytes()
    (img_dir / 'truncated.jpg').write_bytes(data[:len(data) // 2])
    (img_dir / 'corrupt.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a jpeg')
    (img_dir / 'empty.png').write_bytes(b'')
    out = tmp_path / 'props.json'
    assert gen.main([str(img_dir), '--out', str(out), '--max-side',
                     '96']) == 0
    table, info = load_proposal_file(out)
    assert info['num_images'] == 8
    failed = set(info['failed_images'])
    assert {'corrupt.jpg', 'empty.png'} <= failed <= {
        'corrupt.jpg', 'empty.png', 'truncated.jpg'}
    for name in failed:
        assert len(table[name]['bboxes']) == 0
    for name in ('color.png', 'gray.png', 'rgba.png', 'deep.png', 'tiny.png'):
        assert len(table[name]['bboxes']) > 0, name
    assert (table['tiny.png']['width'], table['tiny.png']['height']) == (2, 3)
    assert table['tiny.png']['bboxes'][:, 2].max() <= 2
    # the 16-bit and RGBA files hold the colour PNG's pixels: same boxes
    for name in ('rgba.png', 'deep.png'):
        np.testing.assert_array_equal(table[name]['bboxes'],
                                      table['color.png']['bboxes'])


def test_cli_and_eval(gen, toy_root, reference, tmp_path):
    """The command lines as a user runs them; AR of real proposals."""
    env = dict(os.environ, SOURCE_DATE_EPOCH='0')
    gt = osp.join(toy_root, 'annotations/val.json')
    res = subprocess.run(
        [sys.executable, 'tools/eval_proposals.py', str(reference), gt,
         '--out', str(tmp_path / 'ar.json')],
        cwd=REPO, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert any('AR@100' in ln for ln in res.stdout.splitlines())
    ar = json.load(open(tmp_path / 'ar.json'))
    assert 0 < ar['AR@10'] <= ar['AR@100'] <= ar['AR@1000'] <= 1
    assert ar['num_images'] == 8 and ar['mean_proposals'] > 0
    with pytest.raises(SystemExit):  # argparse: --merge needs shards
        gen.main(['--merge', 'x.json'])
