# Copyright (c) mmselfdet contributors. All rights reserved.
"""The base class of every pretraining algorithm (mmpretrain's name,
``BaseSelfSupervisor``; ``BaseSelfSupDetector`` is its former name)."""
from abc import abstractmethod
from typing import Dict, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModel
from torch import Tensor

from mmselfdet.registry import MODELS

ViewInputs = Dict[str, Tensor]
ViewSamples = Dict[str, list]


class BaseSelfSupervisor(BaseModel):
    """Backbone (+ neck) (+ head) trained without labels on named views.

    Subclasses implement :meth:`loss` and read only the views they need via
    :meth:`get_views`. ``forward`` supports two modes:

    * ``'loss'``: a dict of losses (keys with ``loss`` are optimised; other
      keys are logged metrics);
    * ``'tensor'``: the backbone features of every view (a dict) or of a
      plain image batch (a tuple), for feature extraction and export checks.

    Args:
        backbone (dict): Backbone config, e.g. mmdet ``ResNet``.
        neck (dict, optional): Neck / projector config.
        head (dict, optional): Head config (owns the loss).
        data_preprocessor (dict, optional): Defaults to
            :class:`MultiViewDataPreprocessor`.
        views (Sequence[str]): The view names :meth:`loss` reads, in order.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType = None,
                 head: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 views: Sequence[str] = ('view1', 'view2'),
                 init_cfg: OptMultiConfig = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='MultiViewDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            # build from mmdet's registry whatever the default scope is
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head) if head is not None else None
        self.views = tuple(views)

    @property
    def online_modules(self) -> Tuple[nn.Module, ...]:
        """The modules a momentum encoder copies (backbone, neck); InsLoc
        and SoCo copy their named ``online_encoder`` instead."""
        return tuple(m for m in (self.backbone, self.neck) if m is not None)

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone features of a (N, 3, H, W) batch."""
        return self.backbone(inputs)

    def get_views(self, inputs: Union[ViewInputs, Tensor]) -> Tuple[Tensor, ...]:
        """Return the views named in ``self.views`` from a view dict, with
        an error naming what is missing."""
        if not isinstance(inputs, dict):
            raise TypeError(
                f'{type(self).__name__} expects a dict of named views from '
                'the pipeline (MultiBranch), got a plain tensor batch')
        missing = [v for v in self.views if v not in inputs]
        if missing:
            raise KeyError(
                f'{type(self).__name__} needs views {list(self.views)}, but '
                f'the batch has {sorted(inputs)}; missing {missing}. Name the '
                'MultiBranch branches of the pipeline accordingly.')
        return tuple(inputs[v] for v in self.views)

    def forward(self,
                inputs: Union[ViewInputs, Tensor],
                data_samples: Optional[Union[ViewSamples, list]] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            if isinstance(inputs, dict):
                return {v: self.extract_feat(x) for v, x in inputs.items()}
            return self.extract_feat(inputs)
        raise RuntimeError(
            f'Invalid mode "{mode}": pretraining algorithms support only '
            '"loss" and "tensor"; evaluate by fine-tuning a detector '
            '(configs/benchmarks).')

    @abstractmethod
    def loss(self, inputs: ViewInputs, data_samples: ViewSamples
             ) -> Dict[str, Tensor]:
        """Compute the losses of one batch of views."""


#: the former name of :class:`BaseSelfSupervisor` (the class is not a
#: detector), kept for code that subclasses or imports it
BaseSelfSupDetector = BaseSelfSupervisor
