# Copyright (c) mmselfdet contributors. All rights reserved.
"""``start_host_copy``: the copy is queued where it is called (later work
on the device does not change it and is not waited for)."""
import pytest
import torch

from mmselfdet.models.utils.host_copy import start_host_copy


def test_on_the_cpu_it_is_the_tensor_itself_detached():
    x = torch.arange(6.).requires_grad_()
    got = start_host_copy(x)()
    assert not got.requires_grad and torch.equal(got, x.detach())
    assert got.data_ptr() == x.data_ptr()  # no copy


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_on_a_gpu_the_copy_is_queued_where_started():
    x = torch.arange(1 << 20, dtype=torch.float32, device='cuda')
    wait = start_host_copy(x)
    for _ in range(20):  # work queued after the copy
        x.mul_(1.0001)
    host = wait()
    assert host.device.type == 'cpu' and host.is_pinned()
    assert torch.equal(host, torch.arange(1 << 20, dtype=torch.float32))
