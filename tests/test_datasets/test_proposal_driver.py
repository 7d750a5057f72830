# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/datasets/proposals/driver.py
"""The sharded, resumable driver of the proposal generators, with a toy
batch function (no image decoding): resume skips finished shards, and the
records do not depend on the shard size, the batch size, the number of
workers or an interruption."""
import json
import os

import pytest

from mmselfdet.datasets.proposals import load_proposal_file
from mmselfdet.datasets.proposals.driver import (parts_dir, run_sharded,
                                                 write_records)

IMAGES = [dict(id=i, file_name=f'{i:03d}.jpg', path=f'/nowhere/{i:03d}.jpg')
          for i in (3, 5, 8, 9, 12, 20, 21)]
HEADER = dict(algorithm='toy', k=1)


def toy_batch(batch):
    """Boxes that depend only on the image id (like selective search)."""
    return [dict(id=im['id'], file_name=im['file_name'], width=40,
                 height=30, bboxes=[[0, 0, im['id'], 10], [1, 2, 3, 4]],
                 scores=None, failed=None, stats=dict(n=2)) for im in batch]


class Dies:
    """A batch function that 'kills the run' at its ``n``-th image."""

    def __init__(self, n):
        self.n, self.seen = n, []

    def __call__(self, batch):
        for im in batch:
            if len(self.seen) == self.n:
                raise KeyboardInterrupt
            self.seen.append(im['id'])
        return toy_batch(batch)


def test_resume_skips_finished_shards_and_equals_one_run(tmp_path):
    single = run_sharded(IMAGES, toy_batch, str(tmp_path / 'one.parts'),
                         HEADER, shard_size=len(IMAGES))
    assert [r['id'] for r in single] == [im['id'] for im in IMAGES]
    parts = str(tmp_path / 'out.parts')
    dies = Dies(5)  # shards of 2: shards 0 and 1 finish, shard 2 does not
    with pytest.raises(KeyboardInterrupt):
        run_sharded(IMAGES, dies, parts, HEADER, shard_size=2)
    assert sorted(os.listdir(parts)) == ['shard-00000.json',
                                         'shard-00001.json']
    part = json.load(open(os.path.join(parts, 'shard-00001.json')))
    assert part['header'] == HEADER and part['shard'] == 1
    assert [r['id'] for r in part['records']] == [8, 9]
    # the rerun processes only shards 2 and 3
    again = Dies(len(IMAGES))
    resumed = run_sharded(IMAGES, again, parts, HEADER, shard_size=2,
                          batch_size=3)
    assert again.seen == [12, 20, 21]
    assert resumed == single
    # and the final files are byte-identical
    a, b = str(tmp_path / 'a.json'), str(tmp_path / 'b.json')
    write_records(a, single, dict(HEADER))
    write_records(b, resumed, dict(HEADER))
    assert open(a, 'rb').read() == open(b, 'rb').read()
    table, info = load_proposal_file(a)
    assert info['num_images'] == 7 and info['num_proposals'] == 14
    assert table[12]['bboxes'].tolist() == [[0, 0, 12, 10], [1, 2, 3, 4]]
    assert table[12]['scores'].tolist() == [1.0, 0.5]  # rank scores


def test_workers_give_the_same_records(tmp_path):
    single = run_sharded(IMAGES, toy_batch, str(tmp_path / 'a'), HEADER)
    multi = run_sharded(IMAGES, toy_batch, str(tmp_path / 'b'), HEADER,
                        shard_size=3, workers=2)
    assert multi == single


def test_parts_of_another_run_are_refused(tmp_path):
    parts = str(tmp_path / 'out.parts')
    run_sharded(IMAGES, toy_batch, parts, HEADER, shard_size=4)
    with pytest.raises(SystemExit, match='other arguments'):
        run_sharded(IMAGES, toy_batch, parts, dict(HEADER, k=2),
                    shard_size=4)
    with pytest.raises(SystemExit, match='other images'):
        run_sharded(IMAGES[1:], toy_batch, parts, HEADER, shard_size=4)
    with pytest.raises(ValueError, match='other images'):
        run_sharded(IMAGES, lambda b: toy_batch(b)[:-1],
                    str(tmp_path / 'c'), HEADER)
    assert parts_dir('x/props.json') == 'x/props.parts'
