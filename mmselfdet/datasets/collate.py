# Copyright (c) mmselfdet contributors. All rights reserved.
"""``multi_view_collate``: a batch of multi-view samples that crosses from a
DataLoader worker to the training process cheaply.

mmengine's ``pseudo_collate`` keeps every tensor of every sample: the
worker's queue (``ForkingPickler``) moves each one through its own shared
memory segment, a file descriptor and a rebuild in the main process, some
0.1-0.2 ms apiece however small it is. A SoCo sample holds 27 tensors (3
views, and per view the labels, ids, pairs and boxes of its instances and
ignored instances, most of them a few bytes), so on the 2-core machine the
single training process spent 2.6 ms of CPU per image only receiving them
(at most ~400 images/s, whatever the number of workers) and each worker
5 ms more than the pipeline itself (``docs/benchmarks.md``, "CPU: what the
workers cost per image").

Here, in the worker (the collate function runs there):

* each view's images, when every sample has one ``(C, H, W)`` tensor of one
  shape (fixed-size crops), are stacked into one ``(N, C, H, W)`` tensor:
  one shared-memory segment per view and batch;
* the data samples are pickled **by value** into one bytes object, their
  tensors as raw bytes (:class:`ByValue`); the main process unpickles them
  into ordinary data samples, equal to ``pseudo_collate``'s. (Images that
  stay lists, e.g. views of several sizes, keep torch's shared memory.)

The data preprocessor takes a view as a list or as a stacked tensor
(:class:`~mmselfdet.models.data_preprocessors.MultiViewDataPreprocessor`);
its output is the same either way (``tests/test_datasets/test_collate.py``).
Views whose images differ in size (or are not 3-D, e.g. DetCo's patch
stacks) stay lists.
"""
import io
import pickle
from typing import Any, Sequence

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import FUNCTIONS
from torch.utils.data import get_worker_info


def _rebuild_tensor(arr: np.ndarray) -> torch.Tensor:
    # the unpickled array is read-only (it views the pickle's bytes): copy
    return torch.from_numpy(np.array(arr, copy=True))


class _TensorsAsArrays(pickle.Pickler):
    """A pickler that writes plain CPU tensors as NumPy arrays (their bytes,
    in-band); other tensors (parameters, bfloat16, ...) get torch's own
    reduction, also by value in a plain pickler."""

    def reducer_override(self, obj):
        if (type(obj) is torch.Tensor and obj.device.type == 'cpu'
                and not obj.requires_grad and obj.dtype != torch.bfloat16):
            return _rebuild_tensor, (obj.detach().contiguous().numpy(), )
        return NotImplemented


def _loads(data: bytes) -> Any:
    return pickle.loads(data)


class ByValue:
    """Pickles ``obj`` by value into one bytes object; unpickling gives back
    ``obj`` itself (not a ``ByValue``), with its tensors rebuilt.

    Args:
        obj: Any picklable object (here: a batch's data samples).
    """

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __reduce__(self):
        buf = io.BytesIO()
        _TensorsAsArrays(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(self.obj)
        return _loads, (buf.getvalue(), )


def _stack_view(imgs: Sequence) -> Any:
    if (len(imgs) and all(torch.is_tensor(x) and x.dim() == 3 for x in imgs)
            and len({(x.shape, x.dtype) for x in imgs}) == 1):
        return torch.stack(list(imgs))
    return imgs


@FUNCTIONS.register_module()
def multi_view_collate(data_batch: Sequence) -> Any:
    """``pseudo_collate``, then each fixed-size view's images stacked into
    one tensor and, in a DataLoader worker, the data samples wrapped in
    :class:`ByValue` (in the main process, ``num_workers=0``, nothing
    crosses a process boundary: they are left as they are).

    A batch whose ``inputs`` are not a dict of views (a single-view
    detection batch) is ``pseudo_collate``'s, with its data samples by
    value in a worker.

    Args:
        data_batch (Sequence): The samples, each ``dict(inputs=...,
            data_samples=...)`` as ``PackViews`` / ``PackViewInputs`` give.

    Returns:
        dict: ``inputs`` (a dict: view -> ``(N, C, H, W)`` tensor, or the
        list of the samples' images) and ``data_samples`` (the collated
        data samples; unpickled in the main process as plain ones).
    """
    batch = pseudo_collate(data_batch)
    if not isinstance(batch, dict):
        return batch
    inputs = batch.get('inputs')
    if isinstance(inputs, dict):
        batch['inputs'] = {view: _stack_view(imgs)
                           for view, imgs in inputs.items()}
    if 'data_samples' in batch and get_worker_info() is not None:
        batch['data_samples'] = ByValue(batch['data_samples'])
    return batch
