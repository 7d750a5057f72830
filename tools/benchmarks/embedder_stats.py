# Copyright (c) mmselfdet contributors. All rights reserved.
"""Where a box embedder's outputs collapse: per layer, on one training
batch, the norm of the batch-mean vector against the mean distance of the
samples from it.

    python tools/benchmarks/embedder_stats.py CONFIG [CHECKPOINT ...] \
        [--batch-size 32] [--cfg-options k=v ...]

A ratio well above 1 means a common component dominates the layer (after
L2 normalisation every embedding points the same way; the contrastive loss
then sits at its chance level however the samples rank). ``init`` is the
model as built; each checkpoint is loaded into it. For models with a
``box_embedder`` of convolutions then fully connected layers
(``ConvFCBoxEmbedder``: InsLoc FPN, SoCo, end-to-end SoCo). Prints a table
and, with ``--out``, writes JSON.
"""
import argparse
import json
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def common_ratio(x: torch.Tensor) -> dict:
    """|mean over the batch| and the mean distance from it, (R, ...)."""
    x = x.flatten(1).float()
    mean = x.mean(0)
    dev = (x - mean).norm(dim=1).mean()
    return dict(mean_norm=float(mean.norm()), mean_dev=float(dev),
                ratio=float(mean.norm() / dev.clamp(min=1e-12)))


@torch.no_grad()
def layer_stats(model, batch) -> list:
    """(layer, stats) of the query view's box features, every level."""
    from mmdet.structures.bbox import bbox2roi

    from mmselfdet.models.algorithms.insloc import view_boxes
    data = model.data_preprocessor(batch, True)
    view = model.views[0]
    img = data['inputs'][view]
    boxes = view_boxes(data['data_samples'][view], view)
    enc = model.online_encoder
    pooled = model.roi_pooler(enc.features(img).pyramid,
                              bbox2roi(boxes.split(1)))
    emb = model.box_embedder
    x = torch.cat(pooled, 0)  # every level, as embed_pooled runs them
    rows = [('pooled', common_ratio(x))]
    for i, conv in enumerate(emb.shared_convs):
        x = conv(x)
        rows.append((f'conv{i}', common_ratio(x)))
    x = x.flatten(1)
    for i, fc in enumerate(emb.shared_fcs):
        x = emb.relu(fc(x))
        rows.append((f'fc{i}', common_ratio(x)))
    if emb.fc_out is not None:
        x = emb.fc_out(x)
        rows.append(('fc_out', common_ratio(x)))
    return rows


def main(argv=None) -> dict:
    from mmengine.config import Config, DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoints', nargs='*')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)

    import mmselfdet  # noqa: F401  (registers)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmselfdet.export.transfer import load_checkpoint_file
    from mmselfdet.registry import MODELS
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    loader_cfg = cfg.train_dataloader
    loader_cfg.update(batch_size=args.batch_size, num_workers=0,
                      persistent_workers=False)
    torch.manual_seed(args.seed)
    batch = next(iter(Runner.build_dataloader(loader_cfg, seed=args.seed)))
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'box_embedder'):
        raise SystemExit(f'{args.config}: the model has no box_embedder')
    model.init_weights()
    model.train()  # batch statistics, as in training
    out = {}
    for name in ['init'] + list(args.checkpoints):
        if name != 'init':
            sd = load_checkpoint_file(name)['state_dict']
            model.load_state_dict(sd)
        torch.manual_seed(args.seed)
        out[name] = dict(layer_stats(model, batch))
        print(f'== {name}')
        print('| layer | norm of batch mean | mean distance from it | ratio |')
        print('|---|---|---|---|')
        for layer, s in out[name].items():
            print(f"| {layer} | {s['mean_norm']:.3f} | {s['mean_dev']:.3f} "
                  f"| {s['ratio']:.2f} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == '__main__':
    main()
