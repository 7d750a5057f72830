# Copyright (c) mmselfdet contributors. All rights reserved.
"""Moving a batch's data samples to the device cheaply.

mmengine's ``cast_data`` moves each data sample with
``BaseDataElement.to``: every element is rebuilt (its metainfo deep-copied)
and every tensor is its own host-to-device copy. A multi-view batch has
2-3 data samples per image and up to 9 small tensors per sample (labels,
ids, pairs, boxes of instances and ignored instances), i.e. hundreds of
tiny copies per batch, each a launch and, from pageable memory, a wait.

:func:`move_data_elements` moves the data fields **in place** (metainfo
untouched) and puts every CPU tensor of the whole list into **one** byte
buffer, copied once; the fields become views of its device copy (each
tensor's bytes start at an 8-byte-aligned offset). Boxes (mmdet's
``BaseBoxes``) keep their type. Values, dtypes, shapes and devices are
those ``.to`` gives (``tests/test_models/test_preprocessor_cast.py``).
"""
from typing import List

import torch
from mmdet.structures.bbox import BaseBoxes
from mmengine.structures import BaseDataElement

_ALIGN = 8  # bytes: any dtype can be viewed at such an offset


def fields_to_move(elem: BaseDataElement, device: torch.device,
                   force: bool, out: list) -> None:
    """Append ``(owner, key, value)`` for every data field of ``elem``
    (nested elements included) that has ``.to`` and is not on ``device``
    (every one with ``force``)."""
    for key, value in list(elem.items()):
        if isinstance(value, BaseDataElement):
            fields_to_move(value, device, force, out)
        elif hasattr(value, 'to') and (force or getattr(
                value, 'device', None) != device):
            out.append((elem, key, value))


def _set_field(elem: BaseDataElement, key: str, value) -> None:
    # the field exists and keeps its length: skip the checks of
    # InstanceData.__setattr__ (a len() of every field per call)
    object.__setattr__(elem, key, value)


def move_data_elements(elems: List[BaseDataElement], device,
                       non_blocking: bool = False,
                       force: bool = False) -> List[BaseDataElement]:
    """Move the data fields of ``elems`` (tensors, boxes, nested elements)
    to ``device`` in place, the CPU tensors among them in one copy.

    Args:
        elems (list[BaseDataElement]): e.g. one view's data samples.
        device: The target device.
        non_blocking (bool): Passed to the copy.
        force (bool): Also repack the tensors already on ``device`` (for
            tests: a round trip through the buffer on the CPU).

    Returns:
        list[BaseDataElement]: ``elems`` itself.
    """
    device = torch.device(device)
    slots: list = []
    for elem in elems:
        fields_to_move(elem, device, force, slots)
    packed, chunks, offset = [], [], 0
    for elem, key, value in slots:
        t = value.tensor if isinstance(value, BaseBoxes) else value
        if (torch.is_tensor(t) and t.device.type == 'cpu'
                and not t.requires_grad):
            flat = t.detach().reshape(-1)
            if flat.stride(0) != 1:  # e.g. empty or one-element with
                # stride 0 (tensors rebuilt from numpy): no byte view
                flat = torch.empty(flat.shape, dtype=flat.dtype).copy_(flat)
            raw = flat.view(torch.uint8)
            pad = -raw.numel() % _ALIGN
            chunks.append(raw)
            if pad:
                chunks.append(raw.new_zeros(pad))
            packed.append((elem, key, value, t, offset))
            offset += raw.numel() + pad
        else:  # another device, a subclass with grad, ...: its own copy
            _set_field(elem, key, value.to(device,
                                           non_blocking=non_blocking))
    if not packed:
        return elems
    buf = torch.cat(chunks).to(device, non_blocking=non_blocking)
    for elem, key, value, t, start in packed:
        nbytes = t.numel() * t.element_size()
        moved = buf[start:start + nbytes].view(t.dtype).view(t.shape)
        if value is not t:  # boxes: the same type around the view
            moved = type(value)(moved, clone=False)
        _set_field(elem, key, moved)
    return elems
