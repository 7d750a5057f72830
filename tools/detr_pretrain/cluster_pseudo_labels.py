# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stage B of DETR pretraining: pseudo-classes by k-means over box features.

Reads the proposals + features of ``make_proposals.py``, clusters all box
features of the dataset into K pseudo-classes (scikit-learn
``MiniBatchKMeans``, fixed seed, canonical ids) and writes a standard COCO
json (category ``k`` = ``cluster_%03d``) for mmdet's ``CocoDataset``.

Example::

    python tools/detr_pretrain/cluster_pseudo_labels.py \\
        data/coco/simdetr/proposals.json \\
        --num-classes 256 --out data/coco/simdetr/pseudo_labels_k256.json
"""
import argparse


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('proposals', help='stage-A proposal json (with its '
                   '.features.npy beside it)')
    p.add_argument('--out', required=True, help='output COCO json')
    p.add_argument('--num-classes', type=int, default=256,
                   help='K, the number of pseudo-classes (default 256)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--max-per-img', type=int, default=30,
                   help='round-0 labels: the best N boxes of an image by '
                   'stage-A score (default 30, as DETReg; 0 keeps all; '
                   'every box is clustered either way)')
    p.add_argument('--batch-size', type=int, default=4096,
                   help='MiniBatchKMeans batch size')
    p.add_argument('--no-normalize', action='store_true',
                   help='cluster raw features instead of L2-normalised ones')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmselfdet.simdetr import pseudo_labels_from_proposals
    stats = pseudo_labels_from_proposals(
        args.proposals, args.out, num_classes=args.num_classes,
        seed=args.seed, max_per_img=args.max_per_img or None,
        batch_size=args.batch_size, normalize=not args.no_normalize)
    print(f'wrote {args.out}: {stats}', flush=True)
    return stats


if __name__ == '__main__':
    main()
