# Copyright (c) mmselfdet contributors. All rights reserved.
"""Host (Python) cost per image of a config's data preprocessor.

On a GPU the preprocessor's pixel work runs on the device, but its Python
(moving data samples, per-sample bookkeeping, kernel launches) runs on the
one training process, beside receiving the batches and launching the step.
This measures that part on any machine: one batch from the config's own
pipeline (``multi_view_collate`` or the config's collate function), its
views cut to ``--size`` px so that the pixel work is next to nothing, the
preprocessor called ``--repeats`` times in training mode on fresh copies::

    python tools/benchmarks/preprocess_host.py CONFIG [--batch-size 32]
        [--size 8] [--repeats 20] [--cfg-options ...]

``--mmengine-cast`` times it with mmengine's ``cast_data`` (data samples
rebuilt by ``BaseDataElement.to``) instead of the in-place move, and
``--size 0`` keeps the full views. Prints one JSON line: ``host_ms_per_img``
(median over the repeats), ``sample_tensors`` (the tensors in the batch's
data samples: mmengine's cast copies each to a GPU on its own, the
in-place cast all in one copy), ``device_ops`` (one more call with the
preprocessor on the ``meta`` device: the ATen ops that make a device
tensor, views left out, i.e. the kernel launches and copies a GPU would
get; a read of a device value would raise there) and the views.
"""
import argparse
import copy
import json
import os.path as osp
import statistics
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--size', type=int, default=8,
                   help='cut every view to SIZE x SIZE px (0: keep them)')
    p.add_argument('--repeats', type=int, default=20)
    p.add_argument('--mmengine-cast', action='store_true',
                   help="mmengine's cast_data (BaseDataElement.to)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def cut(inputs: dict, size: int) -> dict:
    if not size:
        return inputs
    return {k: (v[..., :size, :size].contiguous() if torch.is_tensor(v) else
                [x[..., :size, :size].contiguous() for x in v])
            for k, v in inputs.items()}


def count_device_ops(pre, data: dict) -> int:
    """ATen ops that produce a ``meta`` tensor (views left out) in one
    training call of ``pre`` moved to ``meta``."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            first = out[0] if isinstance(out, (tuple, list)) and out else out
            if torch.is_tensor(first) and first.device.type == 'meta' and \
                    not func.is_view:
                Count.ops += 1
            return out

    pre = copy.deepcopy(pre).to('meta')
    with Count():
        pre(data, True)
    return Count.ops


def main(argv=None) -> dict:
    import types

    from mmengine.config import Config
    from mmengine.model import BaseDataPreprocessor
    from mmengine.registry import FUNCTIONS, init_default_scope

    import mmselfdet  # noqa: F401
    from mmselfdet.models.data_preprocessors.device_move import fields_to_move
    from mmselfdet.registry import DATASETS, MODELS
    args = parse_args(argv)
    torch.set_num_threads(1)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    collate = FUNCTIONS.get(cfg.train_dataloader.get(
        'collate_fn', dict(type='pseudo_collate'))['type'])
    batch = collate([dataset[i % len(dataset)]
                     for i in range(args.batch_size)])
    batch['inputs'] = cut(batch['inputs'], args.size)
    pre = MODELS.build(cfg.model.data_preprocessor)
    if args.mmengine_cast:
        pre.cast_data = types.MethodType(BaseDataPreprocessor.cast_data, pre)
    copies = [copy.deepcopy(batch) for _ in range(args.repeats + 1)]
    pre(copies[0], True)  # warm-up
    times = []
    for data in copies[1:]:
        t0 = time.perf_counter()
        pre(data, True)
        times.append(time.perf_counter() - t0)
    slots = []  # the data-sample fields a cast to a GPU would copy
    for samples in (batch['data_samples'].values() if isinstance(
            batch['data_samples'], dict) else [batch['data_samples']]):
        for sample in samples:
            fields_to_move(sample, torch.device('meta'), False, slots)
    device_ops = count_device_ops(pre, copy.deepcopy(batch))
    res = dict(config=osp.relpath(osp.abspath(args.config), REPO),
               batch_size=args.batch_size, size=args.size,
               cast='mmengine' if args.mmengine_cast else 'in place',
               host_ms_per_img=1e3 * statistics.median(times) /
               args.batch_size,
               # host-to-device copies of the data samples per batch:
               # mmengine's cast one per tensor, the in-place cast one
               sample_tensors=len(slots), device_ops=device_ops,
               views=sorted(batch['inputs']) if isinstance(
                   batch['inputs'], dict) else None)
    print(json.dumps(res))
    return res


if __name__ == '__main__':
    main()
