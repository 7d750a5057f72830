# Copyright (c) mmselfdet contributors. All rights reserved.
"""What each pretraining method hands to the downstream detector.

One table (:data:`TRANSFER_SETS`) says, per algorithm (the ``model.type``
of the pretraining config), which parameters transfer and under which
name they appear in the mmdet detector. Everything else (projectors,
queues, momentum encoders) stays behind.

DETR-style pretraining trains a stock mmdet detector on pseudo-labels; its
transfer set is the whole detector except the classification layer
(:data:`DETECTOR_CLASS_LAYERS`), which is re-initialised for the
downstream classes (docs/methods.md §6, §7).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

# Stock mmdet detectors -> the prefixes of their classification layers
# (class-count dependent: never transferred).
DETECTOR_CLASS_LAYERS: Dict[str, Tuple[str, ...]] = {
    'DETR': ('bbox_head.fc_cls.', ),
    'ConditionalDETR': ('bbox_head.fc_cls.', ),
    'DABDETR': ('bbox_head.fc_cls.', ),
    'DeformableDETR': ('bbox_head.cls_branches.', ),
    'DINO': ('bbox_head.cls_branches.', 'dn_query_generator.label_embedding.'),
}

# The generic entry: a whole detector minus its class layers.
WHOLE_DETECTOR = [('', '')]

# method -> [(prefix in the pretraining model, prefix in the mmdet detector)]
TRANSFER_SETS: Dict[str, List[Tuple[str, str]]] = {
    'MoCoV2': [('backbone.', 'backbone.')],
    'BYOL': [('backbone.', 'backbone.')],
    'DetCo': [('backbone.', 'backbone.')],
    # SoCo (and its end-to-end variant, the same model type): backbone +
    # FPN + head convs + fc1 (docs/methods.md §4, §5)
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
    'detector': WHOLE_DETECTOR,
}
TRANSFER_SETS.update({name: WHOLE_DETECTOR for name in DETECTOR_CLASS_LAYERS})


def excluded_prefixes(method: str,
                      extra: Optional[Sequence[str]] = None) -> List[str]:
    """Target prefixes that never transfer (class layers) for ``method``,
    plus ``extra`` (``--exclude``)."""
    return list(DETECTOR_CLASS_LAYERS.get(method, ())) + list(extra or [])


def transfer_set(method: str,
                 parts: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """The (source, target) prefixes of ``method``, with a clear error.

    Args:
        method (str): The algorithm (``model.type``).
        parts (list[str], optional): Keep only what lands under these target
            prefixes (e.g. ``['backbone.']`` to load only the backbone into
            a detector without the method's RoI head). A pair whose target
            prefix contains a part is narrowed to it (the whole-detector
            entry with ``['backbone.']`` gives ``('backbone.',
            'backbone.')``).
    """
    if method not in TRANSFER_SETS:
        raise KeyError(f'no transfer set for method "{method}"; known: '
                       f'{sorted(TRANSFER_SETS)} (mmselfdet/export/transfer.py)')
    pairs = TRANSFER_SETS[method]
    if parts:
        kept = []
        for src, dst in pairs:
            for p in parts:
                if dst.startswith(p):
                    kept.append((src, dst))
                    break
                if p.startswith(dst):
                    kept.append((src + p[len(dst):], p))
        pairs = list(OrderedDict.fromkeys(kept))
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
                      parts: Optional[List[str]] = None,
                      exclude: Optional[Sequence[str]] = None
                      ) -> 'OrderedDict[str, Tensor]':
    """Select and rename the transferable parameters of ``method``.

    Args:
        state_dict: The pretraining model's state dict.
        method: The algorithm (``model.type``).
        parts: See :func:`transfer_set`.
        exclude: Target prefixes left out besides the method's class layers.
    """
    skip = tuple(excluded_prefixes(method, exclude))
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    for src, dst in transfer_set(method, parts):
        for k, v in state_dict.items():
            if k.startswith(src):
                name = dst + k[len(src):]
                if not (skip and name.startswith(skip)):
                    out[name] = v.detach().clone()
    if not out:
        raise ValueError(
            f'none of the checkpoint\'s {len(state_dict)} keys starts with '
            f'{[s for s, _ in transfer_set(method, parts)]}: is it a {method} '
            'pretraining checkpoint?')
    return out


def move_res5_to_roi_head(exported: Dict[str, Tensor],
                          target: Dict[str, Tensor]
                          ) -> Tuple['OrderedDict[str, Tensor]', int]:
    """Fit a full-ResNet export to a C4 detector.

    A C4 detector (mmdet's Faster / Mask R-CNN C4) keeps res2-res4 in its
    backbone and runs res5 as the RoI head (``roi_head.shared_head.layer4``).
    A pretrained ResNet's ``backbone.layer4.*`` belongs there, as
    detectron2's C4 models take ``res5`` into ``roi_heads.res5``.

    Returns:
        The export with ``backbone.layer4.*`` renamed when ``target`` has
        ``roi_head.shared_head.layer4.*`` and no ``backbone.layer4.*``, and
        the number of tensors moved.
    """
    src, dst = 'backbone.layer4.', 'roi_head.shared_head.layer4.'
    if any(k.startswith(src) for k in target) or \
            not any(k.startswith(dst) for k in target):
        return OrderedDict(exported), 0
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    moved = 0
    for k, v in exported.items():
        if k.startswith(src):
            k, moved = dst + k[len(src):], moved + 1
        out[k] = v
    return out, moved


def module_of(key: str) -> str:
    """The module a key is reported under: its first name, or the first two
    for ``roi_head`` (``roi_head.bbox_head``, ``roi_head.shared_head``)."""
    names = key.split('.')
    depth = 2 if names[0] == 'roi_head' and len(names) > 2 else 1
    return '.'.join(names[:depth])


def key_report(exported: Dict[str, Tensor],
               target: Dict[str, Tensor],
               prefixes: Optional[List[str]] = None,
               exclude: Optional[Sequence[str]] = None) -> dict:
    """Compare exported keys with a downstream model's state dict.

    Args:
        exported: The exported state dict.
        target: ``detector.state_dict()``.
        prefixes: Target prefixes the transfer set covers; ``missing`` lists
            only target keys under them (the rest is trained from scratch
            downstream by design).
        exclude: Target prefixes inside ``prefixes`` that are re-initialised
            by design (class layers); never counted as missing.

    Returns:
        dict with sorted lists ``matched``, ``missing``, ``unexpected`` and
        ``shape_mismatch`` (``(key, exported shape, target shape)``), and
        ``modules``: per :func:`module_of`, the count of each list.
    """
    prefixes = tuple(prefixes or [''])
    skip = tuple(exclude or ())
    matched, mismatch = [], []
    for k, v in exported.items():
        if k in target:
            if tuple(target[k].shape) == tuple(v.shape):
                matched.append(k)
            else:
                mismatch.append((k, tuple(v.shape), tuple(target[k].shape)))
    unexpected = [k for k in exported if k not in target]
    missing = [k for k in target
               if k.startswith(prefixes) and k not in exported
               and not (skip and k.startswith(skip))
               and not k.endswith('num_batches_tracked')]
    rep = dict(matched=sorted(matched), missing=sorted(missing),
               unexpected=sorted(unexpected), shape_mismatch=mismatch)
    modules: Dict[str, Dict[str, int]] = {}
    for name in ('matched', 'missing', 'unexpected', 'shape_mismatch'):
        for item in rep[name]:
            key = item[0] if name == 'shape_mismatch' else item
            counts = modules.setdefault(module_of(key), dict(
                matched=0, missing=0, unexpected=0, shape_mismatch=0))
            counts[name] += 1
    rep['modules'] = dict(sorted(modules.items()))
    return rep


def format_key_report(rep: dict, show_keys: int = 5) -> List[str]:
    """The lines the exporter prints: one per module, then totals, then the
    first ``show_keys`` keys of every non-empty problem list."""
    lines = [f'  {"module":<26}{"matched":>8}{"missing":>9}'
             f'{"unexpected":>12}{"shape-mismatched":>18}']
    for mod, c in rep['modules'].items():
        lines.append(f'  {mod:<26}{c["matched"]:>8}{c["missing"]:>9}'
                     f'{c["unexpected"]:>12}{c["shape_mismatch"]:>18}')
    lines.append(f'total: matched {len(rep["matched"])}, missing '
                 f'{len(rep["missing"])}, unexpected {len(rep["unexpected"])}'
                 f', shape-mismatched {len(rep["shape_mismatch"])}')
    for name in ('missing', 'unexpected', 'shape_mismatch'):
        if rep[name]:
            more = ' ...' if len(rep[name]) > show_keys else ''
            lines.append(f'  {name} keys: {rep[name][:show_keys]}{more}')
    return lines
