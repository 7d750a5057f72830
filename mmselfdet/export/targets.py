# Copyright (c) mmselfdet contributors. All rights reserved.
"""Key maps from mmdet detector names to other frameworks' names.

The exporter always selects the transfer set in mmdet names first
(:func:`~mmselfdet.export.transfer.export_state_dict`); a target then
renames those keys and writes the file its framework loads:

* ``mmdet``: ``{'state_dict', 'meta'}`` (``load_from`` / ``init_cfg``).
* ``detectron2``: a pickle of ``{'model': {name: ndarray}, '__author__',
  'matching_heuristics': True}`` as ``DetectionCheckpointer`` reads it.
  ResNet keys use the names of detectron2's
  ``tools/convert-torchvision-to-d2.py`` (``stem.conv1.norm.weight``,
  ``res2.0.shortcut.norm.weight``), which its suffix matching finds in both
  ``backbone.bottom_up.*`` (FPN) and ``backbone.*`` / ``roi_heads.res5.*``
  (C4); the FPN and the box head get their full names
  (``backbone.fpn_lateral2``, ``roi_heads.box_head.conv1``, ``fc1``).
* ``torchvision``: a plain ``state_dict`` of ``torchvision.models.resnet*``
  without ``fc``.
"""
import pickle
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

TARGETS = ('mmdet', 'detectron2', 'torchvision')

# torchvision's ResNets: depth -> (block, blocks per stage)
RESNET_LAYERS = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}
_BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def torchvision_resnet_keys(depth: int) -> List[str]:
    """The ``state_dict`` keys of ``torchvision.models.resnet{depth}()``
    without ``fc.*`` (the layout a strict backbone load expects)."""
    if depth not in RESNET_LAYERS:
        raise KeyError(f'torchvision has no ResNet-{depth}; depths: '
                       f'{sorted(RESNET_LAYERS)}')
    block, counts = RESNET_LAYERS[depth]
    convs = 2 if block == 'basic' else 3
    keys = ['conv1.weight'] + [f'bn1.{n}' for n in _BN]
    for stage, count in enumerate(counts, 1):
        for b in range(count):
            pre = f'layer{stage}.{b}.'
            for c in range(1, convs + 1):
                keys.append(f'{pre}conv{c}.weight')
                keys += [f'{pre}bn{c}.{n}' for n in _BN]
            if b == 0 and (stage > 1 or block == 'bottleneck'):
                keys.append(f'{pre}downsample.0.weight')
                keys += [f'{pre}downsample.1.{n}' for n in _BN]
    return keys


def _resnet_body_to_d2(rest: str) -> str:
    """``layer1.0.bn1.weight`` -> ``res2.0.conv1.norm.weight`` (and the
    shortcut), as detectron2's torchvision converter names them."""
    m = re.match(r'layer(\d)\.(.*)$', rest)
    if m is None:
        raise KeyError(rest)
    body = m.group(2)
    body = re.sub(r'^(\d+)\.bn(\d)\.', r'\1.conv\2.norm.', body)
    body = re.sub(r'^(\d+)\.downsample\.0\.', r'\1.shortcut.', body)
    body = re.sub(r'^(\d+)\.downsample\.1\.', r'\1.shortcut.norm.', body)
    return f'res{int(m.group(1)) + 1}.{body}'


def _conv_module_to_d2(rest: str, name: str) -> str:
    """mmcv ``ConvModule`` (``conv.weight``, ``bn|gn.*``) -> detectron2
    ``Conv2d`` with its norm inside (``weight``, ``norm.*``)."""
    m = re.match(r'(conv|bn|gn|ln)\.(.+)$', rest)
    if m is None:
        raise KeyError(rest)
    return f'{name}.{m.group(2)}' if m.group(1) == 'conv' \
        else f'{name}.norm.{m.group(2)}'


def mmdet_key_to_detectron2(key: str) -> str:
    """One mmdet detector key -> its detectron2 name; ``KeyError`` when
    detectron2 has no counterpart (only ResNet, FPN on C2-C5, the
    4conv-fc box head and the C4 res5 head are mapped)."""
    m = re.match(r'backbone\.(conv1|bn1)\.(.+)$', key)
    if m:
        return ('stem.conv1.' if m.group(1) == 'conv1' else
                'stem.conv1.norm.') + m.group(2)
    if key.startswith('backbone.layer'):
        return _resnet_body_to_d2(key[len('backbone.'):])
    if key.startswith('roi_head.shared_head.layer4.'):
        return _resnet_body_to_d2(key[len('roi_head.shared_head.'):])
    m = re.match(r'neck\.(lateral|fpn)_convs\.(\d+)\.(.+)$', key)
    if m and int(m.group(2)) < 4:
        kind = 'lateral' if m.group(1) == 'lateral' else 'output'
        return _conv_module_to_d2(
            m.group(3), f'backbone.fpn_{kind}{int(m.group(2)) + 2}')
    m = re.match(r'roi_head\.bbox_head\.shared_convs\.(\d+)\.(.+)$', key)
    if m:
        return _conv_module_to_d2(
            m.group(2), f'roi_heads.box_head.conv{int(m.group(1)) + 1}')
    m = re.match(r'roi_head\.bbox_head\.shared_fcs\.(\d+)\.(.+)$', key)
    if m:
        return f'roi_heads.box_head.fc{int(m.group(1)) + 1}.{m.group(2)}'
    raise KeyError(key)


def mmdet_key_to_torchvision(key: str) -> str:
    """``backbone.layer1.0.conv1.weight`` -> ``layer1.0.conv1.weight``
    (mmdet's pytorch-style ResNet already uses torchvision's names); the C4
    res5 head (``roi_head.shared_head.layer4.*``) becomes ``layer4.*``."""
    for pre in ('backbone.', 'roi_head.shared_head.'):
        if key.startswith(pre):
            rest = key[len(pre):]
            if re.match(r'(conv1|bn1)\.|layer[1-4]\.', rest) and (
                    pre == 'backbone.' or rest.startswith('layer4.')):
                return rest
    raise KeyError(key)


KEY_MAPS: Dict[str, Callable[[str], str]] = {
    'detectron2': mmdet_key_to_detectron2,
    'torchvision': mmdet_key_to_torchvision,
}


def convert_keys(state_dict: Dict[str, Tensor], target: str
                 ) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """Rename an mmdet-named state dict for ``target``.

    Returns:
        The renamed state dict and the keys with no counterpart in
        ``target`` (left out).
    """
    if target == 'mmdet':
        return OrderedDict(state_dict), []
    if target not in KEY_MAPS:
        raise KeyError(f'unknown target "{target}"; known: {TARGETS}')
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    left_out = []
    for k, v in state_dict.items():
        try:
            name = KEY_MAPS[target](k)
        except KeyError:
            left_out.append(k)
            continue
        if name in out:
            raise ValueError(f'{target}: two keys map to "{name}"')
        out[name] = v
    return out, left_out


def save_target(state_dict: Dict[str, Tensor], target: str, path: str,
                meta: Optional[dict] = None) -> None:
    """Write ``state_dict`` (already in ``target``'s names) in the file
    format ``target`` loads."""
    if target == 'mmdet':
        torch.save(dict(state_dict=state_dict, meta=meta or {}), path)
    elif target == 'torchvision':
        torch.save(OrderedDict(state_dict), path)
    elif target == 'detectron2':
        model = {k: v.detach().cpu().numpy() for k, v in state_dict.items()}
        with open(path, 'wb') as f:
            pickle.dump(dict(model=model, __author__='mmselfdet',
                             matching_heuristics=True), f)
    else:
        raise KeyError(f'unknown target "{target}"; known: {TARGETS}')


def load_detectron2_pkl(path: str) -> dict:
    """Read a detectron2 ``.pkl`` back (the file is ours: a pickle of numpy
    arrays and strings)."""
    with open(path, 'rb') as f:
        data = pickle.load(f, encoding='latin1')
    if not isinstance(data, dict) or 'model' not in data:
        raise TypeError(f'{path}: not a detectron2 checkpoint dict')
    return data
