# Copyright (c) mmselfdet contributors. All rights reserved.
"""Offline object proposals.

* :mod:`.format`: the proposal file (write, read, validate; the format is
  described there);
* :mod:`.filters`: clip / size / aspect / area / NMS / top-k filters;
* :mod:`.images`: the images a file describes (listing, names, sizes);
* :mod:`.selective_search`: OpenCV selective search (the function the
  registered :class:`~mmselfdet.models.proposers.SelectiveSearchProposer`
  wraps);
* :mod:`.attach`: a file's proposals onto a dataset's data infos;
* :mod:`.driver`: the sharded, resumable run of a generator over an image
  set (``tools/generate_proposals.py``, ``tools/heatmap_proposals.py``).

No module here imports :mod:`mmselfdet.datasets.unlabeled`: the dataset
imports this package, never the reverse.
"""
from .attach import MISSING_PROPOSAL_POLICIES, attach_proposals
from .filters import FILTER_ARGS, FILTER_KEYS, filter_proposals
from .format import (BBOX_DECIMALS, PROPOSAL_FORMAT, PROPOSAL_FORMAT_VERSION,
                     SCORE_DIGITS, load_proposal_file, rank_scores,
                     round_coord, round_score, save_proposal_file,
                     write_proposal_json)
from .images import (image_size_from_header, list_images, read_image_bgr,
                     relative_image_name, to_bgr_uint8)
from .selective_search import selective_search

__all__ = [
    'PROPOSAL_FORMAT', 'PROPOSAL_FORMAT_VERSION', 'BBOX_DECIMALS',
    'SCORE_DIGITS', 'FILTER_KEYS', 'rank_scores', 'save_proposal_file',
    'load_proposal_file', 'filter_proposals', 'selective_search',
    'read_image_bgr', 'to_bgr_uint8', 'relative_image_name', 'list_images',
    'write_proposal_json', 'round_coord', 'round_score', 'FILTER_ARGS',
    'image_size_from_header', 'attach_proposals', 'MISSING_PROPOSAL_POLICIES'
]
