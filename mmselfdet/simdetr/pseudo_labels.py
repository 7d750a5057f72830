# Copyright (c) mmselfdet contributors. All rights reserved.
"""Dataset-level pseudo-classes: k-means over all box features (stage B).

The features may be a memory-mapped file (stage A writes float16): nothing
here copies the whole ``(N, C)`` matrix. One pass in chunks checks that
every row is finite; the seeding reads a random sample
(``init_size = max(3 * batch_size, 3 * K)`` rows, as scikit-learn's
``MiniBatchKMeans``), tries ``n_init`` k-means++ seedings and keeps the one
of least inertia on the sample; then scikit-learn's ``MiniBatchKMeans``
is fed random mini-batches (``partial_fit``, rows gathered from the map and
normalised in float32) until the exponentially weighted batch inertia has
not improved for ``max_no_improvement`` steps or ``max_iter`` passes are
done (scikit-learn's own stopping rule); a last pass in chunks assigns
every row. Heap memory is O(N) for the labels plus O(batch * C): about
8 bytes per box instead of the ~8 * C of the whole float32 matrix and its
normalised copy (docs/benchmarks.md). faiss would be faster on a GPU but
is not a dependency. Cluster ids are made canonical, ordered by decreasing
cluster size (ties by the centre's lexicographic order), so a fixed seed
always gives the same id for the same cluster and id 0 is the most frequent
pseudo-class.
"""
import warnings
from typing import Tuple

import numpy as np

__all__ = ['cluster_features']


def _rows(feats: np.ndarray, idx, normalize: bool) -> np.ndarray:
    """Rows ``idx`` (a slice or sorted indices) as float32, normalised."""
    x = np.asarray(feats[idx], dtype=np.float32)  # (B, C)
    if normalize:
        norms = np.sqrt(np.einsum('ij,ij->i', x, x))  # (B,), no temporary
        x /= np.maximum(norms, 1e-12)[:, None]
    return x


def _check(feats: np.ndarray, chunk_rows: int) -> None:
    """Raise if a row holds a non-finite number (one pass in pieces)."""
    bad = 0
    for start in range(0, len(feats), chunk_rows):
        part = np.asarray(feats[start:start + chunk_rows], np.float32)
        bad += int((~np.isfinite(part)).any(1).sum())
    if bad:
        raise ValueError(f'{bad} feature row(s) hold non-finite numbers')


def _seed_centres(sample: np.ndarray, k: int, n_init: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Best of ``n_init`` k-means++ seedings by inertia on ``sample``."""
    from sklearn.cluster import kmeans_plusplus
    best, best_inertia = None, np.inf
    sq = np.einsum('ij,ij->i', sample, sample)  # (S,)
    for _ in range(max(1, n_init)):
        centres, _ = kmeans_plusplus(
            sample, k, x_squared_norms=sq,
            random_state=int(rng.integers(2**31 - 1)))
        # squared distances via |x|^2 - 2 x.c + |c|^2, (S, k)
        d = sq[:, None] - 2 * sample @ centres.T + (centres**2).sum(1)
        inertia = float(np.maximum(d.min(1), 0).sum())
        if inertia < best_inertia:
            best, best_inertia = centres, inertia
    return best.astype(np.float32)


def cluster_features(feats: np.ndarray,
                     num_clusters: int = 256,
                     seed: int = 0,
                     batch_size: int = 4096,
                     max_iter: int = 100,
                     n_init: int = 3,
                     normalize: bool = True,
                     max_no_improvement: int = 10,
                     chunk_bytes: int = 2**24
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Cluster box features into pseudo-classes, streaming (module doc).

    Args:
        feats (np.ndarray): (N, C) features of any float dtype; an
            ``np.memmap`` is read in pieces, never copied whole.
        num_clusters (int): K. When the seeding sample (all rows when
            N <= ``init_size``) has fewer than K distinct rows, K is
            reduced to that count with a warning (the caller still
            declares K categories; the surplus ones stay unused).
        seed (int): Seed of the sampling, seeding and k-means. Defaults
            to 0.
        batch_size (int): Mini-batch size. Defaults to 4096.
        max_iter (int): Passes over the data at most. Defaults to 100.
        n_init (int): Seedings tried, best inertia kept. Defaults to 3.
        normalize (bool): L2-normalise rows first (cosine geometry).
            Defaults to True.
        max_no_improvement (int): Stop after this many mini-batches
            without a better smoothed inertia. Defaults to 10.
        chunk_bytes (int): Size of a float32 piece of the checking and
            assigning passes. Defaults to 16 MiB.

    Returns:
        tuple[np.ndarray, np.ndarray]: labels (N,) int64 in ``[0, K)`` and
        centres (K, C) float32, in canonical order (see module doc).
    """
    from sklearn.cluster import MiniBatchKMeans
    if num_clusters < 1:
        raise ValueError(f'num_clusters must be >= 1, got {num_clusters}')
    if feats.ndim != 2 or len(feats) == 0:
        raise ValueError(f'features must be a non-empty (N, C) array, got '
                         f'shape {feats.shape}')
    n = len(feats)
    chunk_rows = max(1, chunk_bytes // (4 * max(1, feats.shape[1])))
    _check(feats, chunk_rows)
    rng = np.random.default_rng(seed)
    init_size = min(n, max(3 * batch_size, 3 * int(num_clusters)))
    sample_idx = (np.arange(n) if init_size == n else
                  np.sort(rng.choice(n, init_size, replace=False)))
    sample = _rows(feats, sample_idx, normalize)  # (S, C)
    distinct = len(np.unique(sample, axis=0))
    k = min(int(num_clusters), distinct)
    if k < num_clusters:
        warnings.warn(f'cluster_features: {n} features ({distinct} '
                      f'distinct in the {init_size}-row seeding sample) for '
                      f'{num_clusters} clusters; using K={k}')
    centres = _seed_centres(sample, k, n_init, rng)
    batch = max(min(batch_size, n), k)
    km = MiniBatchKMeans(n_clusters=k, init=centres, n_init=1,
                         batch_size=batch, random_state=seed)
    # the first step sees the whole seeding sample: every seed then holds
    # points, and scikit-learn's reassignment of empty centres (which
    # draws from the step's batch) cannot collapse them onto one region
    km.partial_fit(sample)
    del sample
    alpha = min(batch * 2.0 / (n + 1), 1.0)
    ewa, ewa_min, no_improvement = None, np.inf, 0
    for _ in range(max_iter * -(-n // batch)):
        xb = _rows(feats, np.sort(rng.integers(0, n, batch)), normalize)
        # scikit-learn's stopping rule: the batch's inertia under the
        # current centres, smoothed over steps, has stopped improving
        inertia = -km.score(xb) / batch
        ewa = inertia if ewa is None else ewa * (1 - alpha) + inertia * alpha
        if ewa < ewa_min:
            ewa_min, no_improvement = ewa, 0
        else:
            no_improvement += 1
            if no_improvement >= max_no_improvement:
                break
        km.partial_fit(xb)
    labels = np.empty(n, np.int64)
    for start in range(0, n, chunk_rows):
        labels[start:start + chunk_rows] = km.predict(
            _rows(feats, slice(start, start + chunk_rows), normalize))
    centres = km.cluster_centers_.astype(np.float32)
    sizes = np.bincount(labels, minlength=k)
    # canonical ids: largest cluster first, ties by the centre's values
    order = np.lexsort(tuple(centres.T[::-1]) + (-sizes, ))
    remap = np.empty(k, np.int64)
    remap[order] = np.arange(k)
    return remap[labels], centres[order]
