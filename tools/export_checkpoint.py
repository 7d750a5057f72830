# Copyright (c) mmselfdet contributors. All rights reserved.
"""Export the transferable weights of a pretraining checkpoint.

Usage:
    python tools/export_checkpoint.py PRETRAIN_CKPT OUT \
        [--target mmdet|detectron2|torchvision] [--method MoCoV2] \
        [--downstream-config CONFIG] [--parts backbone. ...] [--strict]

Targets: ``mmdet`` writes ``{'state_dict', 'meta'}`` with mmdet detector
key names (fine-tune with ``load_from=OUT``); ``detectron2`` writes a
``.pkl`` for ``MODEL.WEIGHTS``; ``torchvision`` writes a ResNet
``state_dict`` without ``fc``. A key report (matched / missing /
unexpected / shape-mismatched, per module) against the downstream detector
is always printed; ``--strict`` makes any mismatch a non-zero exit.

Zero-conversion alternative for mmdet (no export step): put
``init_cfg=dict(type='Pretrained', checkpoint=PRETRAIN_CKPT,
prefix='backbone.')`` on the detector's backbone (``prefix='neck.'`` on
the neck). See docs/transfer.md.
"""
import argparse
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('checkpoint', help='pretraining checkpoint (mmengine)')
    p.add_argument('out', help='output file (.pth; .pkl for detectron2)')
    p.add_argument('--target', default='mmdet',
                   choices=['mmdet', 'detectron2', 'torchvision'],
                   help='framework the file is for (default: mmdet)')
    p.add_argument('--method', help='algorithm (model.type); read from the '
                   'checkpoint meta by default')
    p.add_argument('--downstream-config',
                   help='mmdet config of the detector to check keys against '
                   '(default: the method\'s config in configs/benchmarks/)')
    p.add_argument('--parts', nargs='+',
                   help='only these detector prefixes of the transfer set, '
                   'e.g. --parts backbone. (default: the downstream config\'s '
                   '"pretrain.parts", else the whole set)')
    p.add_argument('--exclude', nargs='+',
                   help='detector prefixes to leave out besides the class '
                   'layers (e.g. for --method detector)')
    p.add_argument('--strict', action='store_true',
                   help='exit non-zero on any missing / unexpected / '
                   'shape-mismatched key')
    p.add_argument('--show-keys', type=int, default=5,
                   help='how many keys of each list to print')
    return p.parse_args()


def main():
    args = parse_args()
    import mmselfdet  # noqa: F401
    from mmselfdet.export.exporter import ExportError, export_checkpoint
    try:
        export_checkpoint(args.checkpoint, args.out, target=args.target,
                          method=args.method,
                          downstream_config=args.downstream_config,
                          parts=args.parts, exclude=args.exclude,
                          strict=args.strict, show_keys=args.show_keys)
    except (ExportError, KeyError, ValueError) as e:
        sys.exit(f'export failed: {e}')


if __name__ == '__main__':
    main()
