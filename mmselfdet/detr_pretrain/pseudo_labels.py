# Copyright (c) mmselfdet contributors. All rights reserved.
"""Dataset-level pseudo-classes: k-means over all box features (stage B).

scikit-learn's ``MiniBatchKMeans`` is used: it streams mini-batches, so
millions of boxes fit in memory as one float32 array and a pass costs
O(batch * K * C); it is installed with the project (faiss would be faster
on a GPU but is not a dependency). Cluster ids are made canonical, ordered
by decreasing cluster size (ties by the centre's lexicographic order), so
a fixed seed always gives the same id for the same cluster and id 0 is the
most frequent pseudo-class.
"""
import warnings
from typing import Tuple

import numpy as np

__all__ = ['cluster_features']


def _prepare(feats: np.ndarray, normalize: bool) -> np.ndarray:
    x = np.asarray(feats, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f'features must be a non-empty (N, C) array, got '
                         f'shape {x.shape}')
    if not np.isfinite(x).all():
        raise ValueError(f'{int((~np.isfinite(x)).any(1).sum())} feature '
                         'row(s) hold non-finite numbers')
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def cluster_features(feats: np.ndarray,
                     num_clusters: int = 256,
                     seed: int = 0,
                     batch_size: int = 4096,
                     max_iter: int = 100,
                     n_init: int = 3,
                     normalize: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Cluster box features into pseudo-classes.

    Args:
        feats (np.ndarray): (N, C) features.
        num_clusters (int): K. When there are fewer than K distinct rows,
            K is reduced to that count with a warning (the caller still
            declares K categories; the surplus ones stay unused).
        seed (int): ``random_state`` of the k-means. Defaults to 0.
        batch_size (int): Mini-batch size. Defaults to 4096.
        max_iter (int): Passes over the data at most. Defaults to 100.
        n_init (int): Seedings tried, best inertia kept. Defaults to 3.
        normalize (bool): L2-normalise rows first (cosine geometry).
            Defaults to True.

    Returns:
        tuple[np.ndarray, np.ndarray]: labels (N,) int64 in ``[0, K)`` and
        centres (K, C) float32, in canonical order (see module doc).
    """
    from sklearn.cluster import MiniBatchKMeans
    x = _prepare(feats, normalize)
    if num_clusters < 1:
        raise ValueError(f'num_clusters must be >= 1, got {num_clusters}')
    distinct = len(np.unique(x, axis=0)) if len(x) <= 200000 else len(x)
    k = min(int(num_clusters), distinct)
    if k < num_clusters:
        warnings.warn(f'cluster_features: {len(x)} features ({distinct} '
                      f'distinct) for {num_clusters} clusters; using K={k}')
    km = MiniBatchKMeans(n_clusters=k, random_state=seed,
                         batch_size=min(batch_size, len(x)),
                         max_iter=max_iter, n_init=n_init)
    labels = km.fit_predict(x)
    centres = km.cluster_centers_.astype(np.float32)
    sizes = np.bincount(labels, minlength=k)
    # canonical ids: largest cluster first, ties by the centre's values
    order = np.lexsort(tuple(centres.T[::-1]) + (-sizes, ))
    remap = np.empty(k, np.int64)
    remap[order] = np.arange(k)
    return remap[labels].astype(np.int64), centres[order]

