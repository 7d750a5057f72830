# Copyright (c) mmselfdet contributors. All rights reserved.
"""Export the transferable weights of a pretraining checkpoint for mmdet.

Usage:
    python tools/export_checkpoint.py PRETRAIN_CKPT OUT.pth \
        [--method MoCoV2] [--downstream-config CONFIG]

Writes ``{'state_dict': ..., 'meta': ...}`` with mmdet detector key names
(e.g. ``backbone.layer1.0.conv1.weight``); fine-tune with ``load_from=OUT``.
With ``--downstream-config`` the detector is built and the keys are
compared: matched / missing / unexpected / shape-mismatched are printed, and
the script fails when nothing matches.
"""
import argparse
import os
import os.path as osp
import sys

import torch


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('checkpoint', help='pretraining checkpoint (mmengine)')
    p.add_argument('out', help='output .pth')
    p.add_argument('--method', help='algorithm (model.type); read from the '
                   'checkpoint meta by default')
    p.add_argument('--downstream-config',
                   help='mmdet config of the detector to check keys against')
    p.add_argument('--parts', nargs='+',
                   help='only these detector prefixes of the transfer set, '
                   'e.g. --parts backbone. (default: the whole set)')
    p.add_argument('--show-keys', type=int, default=5,
                   help='how many keys of each list to print')
    return p.parse_args()


def build_target_state_dict(config: str) -> dict:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmselfdet.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    return model.state_dict()


def main():
    args = parse_args()
    import mmselfdet  # noqa: F401
    from mmselfdet.export import (export_state_dict, key_report,
                                  load_checkpoint_file, method_of,
                                  transfer_set)
    if not osp.isfile(args.checkpoint):
        sys.exit(f'checkpoint "{args.checkpoint}" not found')
    ckpt = load_checkpoint_file(args.checkpoint)
    state_dict = ckpt.get('state_dict', ckpt)
    method = args.method or method_of(ckpt, args.checkpoint)
    exported = export_state_dict(state_dict, method, args.parts)
    pairs = transfer_set(method, args.parts)
    print(f'{method}: exported {len(exported)} tensors '
          f'({", ".join(f"{s}* -> {d}*" for s, d in pairs)})')

    if args.downstream_config:
        target = build_target_state_dict(args.downstream_config)
        rep = key_report(exported, target, [d for _, d in pairs])
        n = args.show_keys
        print(f'matched {len(rep["matched"])}/{len(exported)} exported keys '
              f'against {osp.basename(args.downstream_config)}')
        for name in ('missing', 'unexpected', 'shape_mismatch'):
            if rep[name]:
                print(f'  {name} ({len(rep[name])}): {rep[name][:n]}'
                      + (' ...' if len(rep[name]) > n else ''))
        if not rep['matched']:
            sys.exit('no exported key matches the downstream model: wrong '
                     'method or config?')
        if rep['shape_mismatch']:
            sys.exit('shape mismatch between exported and downstream keys')

    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    meta = dict(method=method, source=osp.abspath(args.checkpoint),
                transfer_set=pairs,
                mmselfdet_version=mmselfdet.__version__)
    torch.save(dict(state_dict=exported, meta=meta), args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
