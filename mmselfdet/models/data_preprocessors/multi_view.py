# Copyright (c) mmselfdet contributors. All rights reserved.
"""Batching of named views: ``{view: [img, ...]}`` -> ``{view: (N,3,H,W)}``."""
from typing import Dict, Optional

from mmdet.models.data_preprocessors import DetDataPreprocessor

from mmselfdet.registry import MODELS


@MODELS.register_module()
class MultiViewDataPreprocessor(DetDataPreprocessor):
    """mmdet's :class:`DetDataPreprocessor` applied to every view.

    The pipeline's ``MultiBranch`` packs one sample as
    ``{'inputs': {view: Tensor}, 'data_samples': {view: DetDataSample}}``;
    after collation each view is normalised, padded and stacked on its own,
    and the views are returned under the same names. Data samples keep
    their ``homography_matrix`` and boxes, so a box can be mapped from one
    view into another. A plain (single-view) batch is passed to
    :class:`DetDataPreprocessor` unchanged, so the same model can run in
    ``tensor`` mode on ordinary detection batches.

    Unlike mmdet's ``MultiBranchDataPreprocessor`` this also works with
    ``training=False`` and rejects views that are missing in some samples
    with an error naming them.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if not isinstance(inputs, dict):
            return super().forward(data, training)
        samples: Optional[Dict[str, list]] = data.get('data_samples')
        out_inputs, out_samples = {}, {}
        for view, imgs in inputs.items():
            if any(img is None for img in imgs):
                raise ValueError(
                    f'view "{view}" is missing in some samples of the batch: '
                    'every sample of a pretraining pipeline must produce every '
                    'view (check the MultiBranch branches of the pipeline)')
            view_data = {'inputs': imgs}
            if samples is not None and view in samples:
                view_data['data_samples'] = samples[view]
            res = super().forward(view_data, training)
            out_inputs[view] = res['inputs']  # (N, 3, H, W)
            out_samples[view] = res.get('data_samples')
        return {'inputs': out_inputs, 'data_samples': out_samples}
