# Copyright (c) mmselfdet contributors. All rights reserved.
"""k-NN and linear probes on frozen features (``tools/benchmarks/probe.py``).

Single-label (``crops``: one category per box) reports top-1 accuracy, the
linear protocol DetCo / InsLoc report on ImageNet; multi-label (``images``:
the categories present) reports mAP over classes, the object-aware
cropping paper's multi-object linear protocol.

* k-NN: cosine similarity to the ``k`` nearest train features, each
  neighbour votes for its label(s) with weight ``exp(sim / T)`` (InstDisc /
  DINO, k=20, T=0.07). Multi-label scores are the weighted label averages.
* Linear: logistic regression (softmax for single-label, one sigmoid per
  class for multi-label) on L2-normalised or standardised features (train
  statistics), fitted full-batch with L-BFGS from zero weights, L2 weight
  decay on the weights. The decay is chosen on a held-out part of TRAIN
  (whole images held out, so crops of one image never straddle the split);
  the model is then refitted on all of train. Val is only evaluated.
"""
import time
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .probe_features import (ProbeError, build_backbone, default_img_prefix,
                             extract_features, load_coco, make_samples)

DEFAULT_WD_GRID = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def knn_scores(train_x: Tensor, train_y: Tensor, test_x: Tensor,
               num_classes: int, k: int = 20, temperature: float = 0.07,
               chunk: int = 1024) -> Tensor:
    """Temperature-weighted k-NN votes.

    Args:
        train_x: (N, D) train features.
        train_y: (N,) class indices or (N, C) multi-hot labels.
        test_x: (M, D) test features.
        num_classes: C.
        k: Neighbours (at most N).
        temperature: T in ``exp(cos / T)``.

    Returns:
        (M, C) votes normalised to sum of weights 1 (argmax = prediction).
    """
    hot = (F.one_hot(train_y, num_classes).float() if train_y.dim() == 1
           else train_y.float())  # (N, C)
    a = F.normalize(train_x.float(), dim=1)
    k = min(k, len(a))
    out = []
    for i in range(0, len(test_x), chunk):
        b = F.normalize(test_x[i:i + chunk].float(), dim=1)
        sim, idx = (b @ a.t()).topk(k, dim=1)  # (m, k)
        w = (sim / temperature).exp()
        w = w / w.sum(1, keepdim=True)
        out.append((w.unsqueeze(-1) * hot[idx]).sum(1))  # (m, C)
    return torch.cat(out)


def average_precision(scores: Tensor, targets: Tensor) -> float:
    """Non-interpolated AP of one class: ``sum_n (R_n - R_{n-1}) P_n`` over
    the distinct score thresholds, highest first (tied scores form one
    threshold). NaN when there is no positive."""
    order = torch.argsort(scores.double(), descending=True, stable=True)
    s, t = scores.double()[order], targets.double()[order]
    npos = t.sum()
    if npos == 0:
        return float('nan')
    tp, fp = t.cumsum(0), (1 - t).cumsum(0)
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # last index of each threshold group
    tp, fp = tp[last], fp[last]
    recall = tp / npos
    precision = tp / (tp + fp)
    gains = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((gains * precision).sum())


def mean_average_precision(scores: Tensor, targets: Tensor) -> float:
    """Mean of :func:`average_precision` over the (N, C) columns with at
    least one positive."""
    aps = [average_precision(scores[:, c], targets[:, c])
           for c in range(scores.shape[1]) if targets[:, c].sum() > 0]
    if not aps:
        raise ProbeError('no class has a positive sample: mAP is undefined')
    return sum(aps) / len(aps)


def score(pred: Tensor, y: Tensor) -> float:
    """Top-1 accuracy (single-label) or mAP (multi-label), in %."""
    if y.dim() == 1:
        return 100.0 * float((pred.argmax(1) == y).double().mean())
    return 100.0 * mean_average_precision(pred, y)


def normalise(train_x: Tensor, test_x: Tensor, how: str):
    """Feature preprocessing for the linear probe (``'l2'`` or
    ``'standard'``: z-score with ``train_x``'s statistics)."""
    if how == 'l2':
        return F.normalize(train_x, dim=1), F.normalize(test_x, dim=1)
    if how == 'standard':
        mu, sd = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
        return (train_x - mu) / sd, (test_x - mu) / sd
    raise ProbeError(f'unknown feature normalisation "{how}" (l2, standard)')


def fit_logistic(x: Tensor, y: Tensor, num_classes: int, weight_decay: float,
                 max_iter: int = 200):
    """Full-batch L-BFGS fit of a linear classifier from zero weights.

    Loss: cross entropy (class indices) or mean binary cross entropy
    (multi-hot) + ``weight_decay / 2 * ||W||^2`` (bias not decayed).

    Returns:
        (W (D, C), b (C,)).
    """
    x = x.double()
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64,
                    requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    multi = y.dim() == 2
    target = y.double() if multi else y
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter,
                            tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        logits = x @ w + b  # (N, C)
        loss = (F.binary_cross_entropy_with_logits(logits, target)
                if multi else F.cross_entropy(logits, target))
        loss = loss + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def linear_probe(train_x: Tensor, train_y: Tensor, groups: Tensor,
                 test_x: Tensor, num_classes: int,
                 wd_grid: Sequence[float] = DEFAULT_WD_GRID,
                 norm: str = 'standard', holdout: float = 0.2,
                 seed: int = 0, max_iter: int = 200) -> dict:
    """Choose the weight decay on held-out train images, refit, predict.

    Args:
        train_x, train_y: (N, D) features, (N,) or (N, C) labels.
        groups: (N,) image id of each train sample: a held-out image takes
            all its samples along.
        test_x: (M, D) features to predict (never used for the choice).
        holdout: Fraction of the train images held out for the choice.

    Returns:
        dict: ``scores`` (M, C) of the refitted model (logits), ``wd``
        (the chosen decay; the largest of the best on ties),
        ``holdout_scores`` (decay -> held-out metric, %), ``n_holdout``.
    """
    ids = torch.unique(groups)
    gen = torch.Generator().manual_seed(seed)
    perm = ids[torch.randperm(len(ids), generator=gen)]
    n_out = max(1, round(holdout * len(ids)))
    if n_out >= len(ids):
        raise ProbeError(f'{len(ids)} train images: too few to hold '
                         f'{holdout:.0%} out for choosing the weight decay')
    held = torch.isin(groups, perm[:n_out])
    fx, hx = normalise(train_x[~held], train_x[held], norm)
    results: Dict[float, float] = {}
    for wd in wd_grid:
        w, b = fit_logistic(fx, train_y[~held], num_classes, wd, max_iter)
        results[float(wd)] = score(hx.double() @ w + b, train_y[held])
    best = max(results.values())
    chosen = max(wd for wd, v in results.items() if v == best)
    ax, tx = normalise(train_x, test_x, norm)
    w, b = fit_logistic(ax, train_y, num_classes, chosen, max_iter)
    return dict(scores=tx.double() @ w + b, wd=chosen,
                holdout_scores=results, n_holdout=int(held.sum()))


def collapse_stats(feats: torch.Tensor) -> dict:
    """How spread the L2-normalised features are (a collapse indicator).

    Args:
        feats: (N, D) features, N >= 2.

    Returns:
        ``normed_std``: the per-dimension std over samples of the
        normalised features, averaged over dimensions and times sqrt(D)
        (about 1 for directions spread evenly over the sphere, 0 when every
        sample maps to one direction); ``mean_cosine``: the mean cosine
        similarity of distinct pairs (1 when collapsed).
    """
    z = torch.nn.functional.normalize(feats.double(), dim=1)  # (N, D)
    n, d = z.shape
    total = z.sum(0)  # (D, )
    mean_cos = (total.dot(total) - n) / (n * (n - 1))
    return dict(normed_std=float(z.std(0).mean() * d**0.5),
                mean_cosine=float(mean_cos))


def run_probe(checkpoint: str, train_ann: str, val_ann: str,
              train_img_prefix: Optional[str] = None,
              val_img_prefix: Optional[str] = None, mode: str = 'crops',
              size: int = 64, context: int = 0, stages=(5, ),
              depth: Optional[int] = None, zero_init_residual: bool = True,
              k: int = 20, temperature: float = 0.07,
              linear_norm: str = 'standard',
              wd_grid: Sequence[float] = DEFAULT_WD_GRID,
              holdout: float = 0.2, seed: int = 0, batch_size: int = 128,
              log: Optional[Callable[[str], None]] = None) -> dict:
    """Probe ``checkpoint``'s frozen backbone on a train / val json pair.

    Returns:
        A JSON-serialisable dict: the setup, ``metric`` (``top1`` or
        ``mAP``, in %), ``knn`` and ``linear`` results and wall times.
    """
    log = log or (lambda msg: None)
    t0 = time.time()
    torch.manual_seed(seed)
    model = build_backbone(checkpoint, depth, zero_init_residual, seed)
    train, val = load_coco(train_ann), load_coco(val_ann)
    cats = train['cat_ids']
    missing = sorted(set(val['cat_ids']) - set(cats))
    if missing:
        raise ProbeError(f'{val_ann}: categories {missing} are not in '
                         f'{train_ann}')
    feats, labels = {}, {}
    for name, coco, prefix in (('train', train, train_img_prefix),
                               ('val', val, val_img_prefix)):
        prefix = prefix or default_img_prefix(coco['file'])
        x, y, g = make_samples(coco, prefix, mode, size, context, cats)
        log(f'{name}: {len(x)} {mode} from {coco["file"]} ({prefix})')
        feats[name] = extract_features(model, x, stages, batch_size, log,
                                       name)
        labels[name] = (y, g)
    t_feat = time.time() - t0
    (ytr, gtr), (yva, _) = labels['train'], labels['val']
    ncls, t1 = len(cats), time.time()
    knn = knn_scores(feats['train'], ytr, feats['val'], ncls, k, temperature)
    lin = linear_probe(feats['train'], ytr, gtr, feats['val'], ncls, wd_grid,
                       linear_norm, holdout, seed)
    metric = 'top1' if mode == 'crops' else 'mAP'
    return dict(
        checkpoint=checkpoint, depth=model.depth, mode=mode, size=size,
        context=context, stages=list(stages), seed=seed,
        zero_init_residual=zero_init_residual if checkpoint == 'random'
        else None, train_ann=train_ann, val_ann=val_ann,
        n_train=len(ytr), n_val=len(yva), num_classes=ncls,
        feature_dim=int(feats['train'].shape[1]), metric=metric,
        knn={'k': min(k, len(ytr)), 'T': temperature,
             metric: score(knn, yva)},
        linear={'norm': linear_norm, 'wd': lin['wd'],
                'wd_grid': [float(w) for w in wd_grid],
                'holdout_images': holdout, 'n_holdout': lin['n_holdout'],
                f'holdout_{metric}': {str(w): v for w, v in
                                      lin['holdout_scores'].items()},
                metric: score(lin['scores'], yva)},
        collapse=collapse_stats(feats['val']),
        time_s=dict(features=round(t_feat, 2),
                    classifiers=round(time.time() - t1, 2),
                    total=round(time.time() - t0, 2)))


def format_table(res: dict) -> str:
    """A small markdown table of a :func:`run_probe` result."""
    m, name = res['metric'], res['checkpoint']
    if res['zero_init_residual'] is not None:
        name += f' (zero_init_residual={res["zero_init_residual"]})'
    rows = [f'| checkpoint | mode | k-NN {m} | linear {m} | linear wd |',
            '|---|---|---|---|---|',
            f'| {name} | {res["mode"]} | '
            f'{res["knn"][m]:.2f} | {res["linear"][m]:.2f} | '
            f'{res["linear"]["wd"]:g} |']
    return '\n'.join(rows)
