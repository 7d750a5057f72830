# Copyright (c) mmselfdet contributors. All rights reserved.
"""Reading a device tensor on the host without waiting for later work.

``tensor.cpu()`` waits for every kernel queued before it, e.g. a whole
backbone forward launched just before. :func:`start_host_copy` queues the
copy where it is called (before the forward, say) and returns a function
that waits for that copy only, so host work on the copy (InsLoc's anchor
jitter) runs while the device computes what was launched after it.
"""
from typing import Callable

import torch
from torch import Tensor


def start_host_copy(tensor: Tensor) -> Callable[[], Tensor]:
    """Start copying ``tensor`` (detached) to the host.

    Returns:
        A function that returns the host tensor once its copy is done. On
        the CPU, the tensor itself. On an accelerator the copy is
        non-blocking (into pinned memory) and an event recorded after it
        on the current stream is waited for.
    """
    tensor = tensor.detach()
    if tensor.device.type == 'cpu':
        return lambda: tensor
    host = tensor.to('cpu', non_blocking=True)
    # torch.Event (any accelerator) from torch 2.5; CUDA's own before
    done = torch.Event(device=tensor.device) if hasattr(torch, 'Event') \
        else torch.cuda.Event()
    done.record()

    def wait() -> Tensor:
        done.synchronize()
        return host
    return wait
