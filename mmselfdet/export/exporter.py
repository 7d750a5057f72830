# Copyright (c) mmselfdet contributors. All rights reserved.
"""The export job behind ``tools/export_checkpoint.py``.

checkpoint -> transfer set in mmdet names -> key report against the
downstream detector -> rename for the target -> file.
"""
import copy
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from torch import Tensor

from .targets import (RESNET_LAYERS, TARGETS, convert_keys, save_target,
                      torchvision_resnet_keys)
from .transfer import (excluded_prefixes, export_state_dict, format_key_report,
                       key_report, load_checkpoint_file, method_of,
                       move_res5_to_roi_head, transfer_set)

from mmselfdet.utils.paths import project_path

# The detector a method is checked against when no --downstream-config is
# given, keyed by model.type (e.g. 'MoCoV2' -> the first config of its family
# in configs/benchmarks/, R50): derived from the one method table
# (mmselfdet/methods.py, the row that declares `benchmark` for the type).
from mmselfdet.methods import DEFAULT_DOWNSTREAM  # noqa: E402

# torchvision's ResNet is a backbone: nothing else can land there.
TORCHVISION_PARTS = ['backbone.', 'roi_head.shared_head.']


class ExportError(RuntimeError):
    """A failed export check (the message says what and where)."""


def build_state_dict(cfg) -> Dict[str, Tensor]:
    """``state_dict()`` of the model a config builds (no weights loaded)."""
    from mmengine.registry import init_default_scope

    from mmselfdet.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # deep copy: some detectors (DeformableDETR) write into their config
    return MODELS.build(copy.deepcopy(cfg.model)).state_dict()


def resnet_depth_of(keys: Sequence[str]) -> int:
    """The ResNet depth whose block layout the ``layerN.B.`` keys show."""
    counts, bottleneck = [0, 0, 0, 0], False
    for k in keys:
        parts = k.split('.')
        if parts[0].startswith('layer') and len(parts) > 2:
            stage = int(parts[0][5:]) - 1
            counts[stage] = max(counts[stage], int(parts[1]) + 1)
            bottleneck |= parts[2] == 'conv3'
    for depth, (block, layout) in RESNET_LAYERS.items():
        if tuple(counts) == layout and (block == 'bottleneck') == bottleneck:
            return depth
    raise ExportError(f'the exported backbone has blocks per stage {counts}: '
                      'not a torchvision ResNet layout')


def export_checkpoint(checkpoint: str,
                      out: str,
                      target: str = 'mmdet',
                      method: Optional[str] = None,
                      downstream_config: Optional[str] = None,
                      parts: Optional[List[str]] = None,
                      exclude: Optional[List[str]] = None,
                      strict: bool = False,
                      show_keys: int = 5,
                      log=print) -> dict:
    """Export ``checkpoint``'s transfer set for ``target`` into ``out``.

    Args:
        checkpoint: The pretraining checkpoint (mmengine).
        out: Output path (``.pth``; ``.pkl`` for detectron2).
        target: One of :data:`TARGETS`.
        method: ``model.type`` of the pretraining; read from the checkpoint's
            stored config by default.
        downstream_config: The mmdet config the report is made against.
            Defaults to the method's family config
            (:data:`DEFAULT_DOWNSTREAM`); then a mismatch only warns unless
            ``strict``. A family config's ``pretrain`` dict supplies the
            ``parts`` it loads and the method it expects.
        parts: Restrict the transfer set to these target prefixes.
        exclude: Extra target prefixes to leave out.
        strict: Fail on any missing, unexpected or shape-mismatched key.
        show_keys: How many keys of every problem list to print.
        log: Where the report lines go.

    Returns:
        The key report (see :func:`key_report`) plus ``method``, ``target``,
        ``left_out`` and ``out``.
    """
    from mmengine.config import Config
    if target not in TARGETS:
        raise ExportError(f'unknown target "{target}"; known: {TARGETS}')
    if not osp.isfile(checkpoint):
        raise ExportError(f'checkpoint "{checkpoint}" not found')
    ckpt = load_checkpoint_file(checkpoint)
    state_dict = ckpt.get('state_dict', ckpt)
    method = method or method_of(ckpt, checkpoint)
    transfer_set(method)  # unknown method -> KeyError naming the table

    explicit = downstream_config is not None
    if not explicit:
        default = DEFAULT_DOWNSTREAM.get(method)
        # configs/benchmarks/..., in a checkout or an installed wheel
        if default is None or not osp.isfile(
                project_path(default, must_exist=False)):
            raise ExportError(f'no default downstream config for {method}: '
                              'pass --downstream-config')
        downstream_config = project_path(default)
    cfg = Config.fromfile(downstream_config)
    expected = cfg.get('pretrain')
    if expected is not None:
        if expected.get('method') not in (None, method):
            raise ExportError(
                f'{downstream_config} loads a {expected["method"]} export '
                f'(its "pretrain" dict) but {checkpoint} is {method}')
        if parts is None and expected.get('parts'):
            parts = list(expected['parts'])
    if target == 'torchvision':
        parts = [p for p in TORCHVISION_PARTS
                 if not parts or any(p.startswith(q) for q in parts)] or parts

    pairs = transfer_set(method, parts)
    skip = excluded_prefixes(method, exclude)
    exported = export_state_dict(state_dict, method, parts, exclude)
    log(f'{method}: exported {len(exported)} tensors '
        f'({", ".join(f"{s}* -> {d}*" for s, d in pairs)})'
        + (f', leaving out {skip}' if skip else ''))

    target_sd = build_state_dict(cfg)
    prefixes = [d for _, d in pairs]
    exported, moved = move_res5_to_roi_head(exported, target_sd)
    if moved:
        prefixes.append('roi_head.shared_head.')
        log(f'C4 detector: {moved} backbone.layer4.* tensors go to its RoI '
            'head (roi_head.shared_head.layer4.*)')
    rep = key_report(exported, target_sd, prefixes, skip)
    log(f'matched {len(rep["matched"])}/{len(exported)} exported keys '
        f'against {osp.basename(downstream_config)}')
    for line in format_key_report(rep, show_keys):
        log(line)

    renamed, left_out = convert_keys(exported, target)
    problems = []
    if left_out:
        msg = (f'{len(left_out)} exported keys have no {target} name '
               f'(e.g. {left_out[:show_keys]})')
        if target == 'detectron2':
            raise ExportError(msg + '; restrict the export with --parts')
        problems.append(msg)
    if target == 'torchvision':
        depth = resnet_depth_of(renamed)
        want = torchvision_resnet_keys(depth)
        lacking = [k for k in want if k not in renamed]
        extra = [k for k in renamed if k not in set(want)]
        log(f'torchvision resnet{depth} (without fc): '
            f'{len(want) - len(lacking)}/{len(want)} keys present, '
            f'missing {len(lacking)}, unexpected {len(extra)}')
        if lacking or extra:
            problems.append(f'torchvision layout: missing {lacking[:5]}, '
                            f'unexpected {extra[:5]}')

    if explicit and not rep['matched']:
        raise ExportError('no exported key matches the downstream model: '
                          'wrong method or config?')
    if explicit and rep['shape_mismatch']:
        raise ExportError('shape mismatch between exported and downstream '
                          f'keys: {rep["shape_mismatch"][:show_keys]}')
    if rep['missing'] or rep['unexpected'] or rep['shape_mismatch']:
        problems.append('the key report is not clean')
    if problems:
        if strict:
            raise ExportError('--strict: ' + '; '.join(problems))
        log('warning: ' + '; '.join(problems))

    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    import mmselfdet
    meta = dict(method=method, source=osp.abspath(checkpoint), target=target,
                transfer_set=pairs, excluded=skip,
                mmselfdet_version=mmselfdet.__version__)
    save_target(renamed, target, out, meta)
    log(f'wrote {out} ({target})')
    rep.update(method=method, target=target, left_out=left_out, out=out)
    return rep
