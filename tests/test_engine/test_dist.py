# Copyright (c) mmselfdet contributors. All rights reserved.
"""Two CPU processes (gloo): the queue receives keys from both ranks and
shuffle-BN round-trips across ranks."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        from mmselfdet.models.utils import (FeatureQueue, batch_shuffle,
                                            batch_unshuffle)
        q = FeatureQueue(length=16, feat_dim=2)
        keys = torch.full((3, 2), float(rank + 1))  # rank 0 -> 1s, 1 -> 2s
        q.enqueue(keys)
        torch.manual_seed(rank)  # different seeds: the perm is broadcast
        x = torch.arange(4, dtype=torch.float).view(4, 1) + 10 * rank
        shuffled, idx = batch_shuffle(x)
        back = batch_unshuffle(shuffled, idx)
        torch.save(dict(buffer=q.buffer.clone(), ptr=q.ptr.clone(),
                        shuffled=shuffled, back=back, x=x),
                   os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_queue_gathers_keys_from_both_ranks(tmp_path):
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    for r in (r0, r1):
        assert int(r['ptr'][0]) == 6  # 3 keys x 2 ranks
        head = r['buffer'][0, :6]
        assert torch.equal(head[:3], torch.ones(3, 2))
        assert torch.equal(head[3:], torch.full((3, 2), 2.0))
        # the round trip restores each rank's own batch
        assert torch.equal(r['back'], r['x'])
    # both ranks wrote the same gathered keys (the random initial rest of
    # the queue is made equal by DDP's buffer broadcast in real training)
    assert torch.equal(r0['buffer'][0, :6], r1['buffer'][0, :6])
    # samples really moved across ranks: the union is the global batch
    union = torch.cat([r0['shuffled'], r1['shuffled']]).view(-1).sort()[0]
    assert union.tolist() == [0, 1, 2, 3, 10, 11, 12, 13]
