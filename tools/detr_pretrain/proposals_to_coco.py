# Copyright (c) mmselfdet contributors. All rights reserved.
"""DETReg-style baseline targets: a class-agnostic COCO json from a proposal
file (e.g. selective search from ``tools/generate_proposals.py``), keeping
the top-k boxes of every image as category 0 ``object``.

Example::

    python tools/generate_proposals.py ... --out data/coco/ss_train2017.json
    python tools/detr_pretrain/proposals_to_coco.py \\
        data/coco/ss_train2017.json --topk 30 \\
        --out data/coco/simdetr/detreg_ss_top30.json
"""
import argparse


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('proposals', help='proposal json (mmselfdet format)')
    p.add_argument('--out', required=True, help='output COCO json')
    p.add_argument('--topk', type=int, default=30,
                   help='boxes per image (DETReg: 30)')
    args = p.parse_args(argv)
    from mmselfdet.simdetr import proposals_to_coco
    stats = proposals_to_coco(args.proposals, args.out, topk=args.topk)
    print(f'wrote {args.out}: {stats}', flush=True)
    return stats


if __name__ == '__main__':
    main()
