# Copyright (c) mmselfdet contributors. All rights reserved.
"""What each pretraining method hands to the downstream detector.

One table (:data:`TRANSFER_SETS`) says, per algorithm (the ``model.type``
of the pretraining config), which parameters transfer and under which
name they appear in the mmdet detector. Everything else (projectors,
queues, momentum encoders) stays behind.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

# method -> [(prefix in the pretraining model, prefix in the mmdet detector)]
TRANSFER_SETS: Dict[str, List[Tuple[str, str]]] = {
    'MoCoV2': [('backbone.', 'backbone.')],
    'BYOL': [('backbone.', 'backbone.')],
    'DetCo': [('backbone.', 'backbone.')],
    # SoCo: backbone + FPN + head convs + fc1 (METHODS.md §4)
    'SoCo': [
        ('backbone.', 'backbone.'),
        ('neck.', 'neck.'),
        ('box_embedder.shared_convs.', 'roi_head.bbox_head.shared_convs.'),
        ('box_embedder.shared_fcs.0.', 'roi_head.bbox_head.shared_fcs.0.'),
    ],
    # FPN variant: backbone + FPN + head convs + first FC into mmdet's
    # Shared4Conv1FCBBoxHead; C4 variant: backbone + res5 RoI head.
    'InsLoc': [
        ('backbone.', 'backbone.'),
        ('neck.', 'neck.'),
        ('box_embedder.shared_convs.', 'roi_head.bbox_head.shared_convs.'),
        ('box_embedder.shared_fcs.0.', 'roi_head.bbox_head.shared_fcs.0.'),
        ('box_embedder.shared_head.', 'roi_head.shared_head.'),
    ],
}


def transfer_set(method: str,
                 parts: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """The (source, target) prefixes of ``method``, with a clear error.

    Args:
        method (str): The algorithm (``model.type``).
        parts (list[str], optional): Keep only pairs whose target prefix
            starts with one of these (e.g. ``['backbone.']`` to load only the
            backbone into a detector without the method's RoI head).
    """
    if method not in TRANSFER_SETS:
        raise KeyError(f'no transfer set for method "{method}"; known: '
                       f'{sorted(TRANSFER_SETS)} (mmselfdet/export/transfer.py)')
    pairs = TRANSFER_SETS[method]
    if parts:
        pairs = [(s, d) for s, d in pairs if any(d.startswith(p) for p in parts)]
        if not pairs:
            raise KeyError(f'--parts {parts} selects nothing of {method}\'s '
                           f'transfer set {TRANSFER_SETS[method]}')
    return pairs


def load_checkpoint_file(path: str) -> dict:
    """Load an mmengine checkpoint safely (``weights_only=True``).

    mmselfdet allow-lists the few non-tensor classes mmengine writes (see
    :mod:`mmselfdet.engine.checkpoint`), so no pickled code is executed.
    """
    import mmselfdet.engine  # noqa: F401  (registers the safe globals)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{path}: not a checkpoint dict')
    return ckpt


def method_of(ckpt: dict, path: str = '') -> str:
    """Read ``model.type`` from the config text an mmengine checkpoint
    stores in ``meta['cfg']``."""
    cfg_text = ckpt.get('meta', {}).get('cfg')
    if not cfg_text:
        raise KeyError(f'{path}: checkpoint has no meta["cfg"]; pass the '
                       'method name explicitly (--method)')
    from mmengine.config import Config
    cfg = Config.fromstring(cfg_text, file_format='.py')
    return cfg.model.type


def export_state_dict(state_dict: Dict[str, Tensor],
                      method: str,
                      parts: Optional[List[str]] = None
                      ) -> 'OrderedDict[str, Tensor]':
    """Select and rename the transferable parameters of ``method``."""
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    for src, dst in transfer_set(method, parts):
        for k, v in state_dict.items():
            if k.startswith(src):
                out[dst + k[len(src):]] = v.detach().clone()
    if not out:
        raise ValueError(
            f'none of the checkpoint\'s {len(state_dict)} keys starts with '
            f'{[s for s, _ in transfer_set(method, parts)]}: is it a {method} '
            'pretraining checkpoint?')
    return out


def key_report(exported: Dict[str, Tensor],
               target: Dict[str, Tensor],
               prefixes: Optional[List[str]] = None) -> dict:
    """Compare exported keys with a downstream model's state dict.

    Args:
        exported: The exported state dict.
        target: ``detector.state_dict()``.
        prefixes: Target prefixes the transfer set covers; ``missing`` lists
            only target keys under them (the rest is trained from scratch
            downstream by design).

    Returns:
        dict with sorted lists ``matched``, ``missing``, ``unexpected`` and
        ``shape_mismatch`` (``(key, exported shape, target shape)``).
    """
    prefixes = prefixes or ['']
    matched, mismatch = [], []
    for k, v in exported.items():
        if k in target:
            if tuple(target[k].shape) == tuple(v.shape):
                matched.append(k)
            else:
                mismatch.append((k, tuple(v.shape), tuple(target[k].shape)))
    unexpected = [k for k in exported if k not in target]
    missing = [k for k in target
               if any(k.startswith(p) for p in prefixes) and k not in exported
               and not k.endswith('num_batches_tracked')]
    return dict(matched=sorted(matched), missing=sorted(missing),
                unexpected=sorted(unexpected), shape_mismatch=mismatch)
