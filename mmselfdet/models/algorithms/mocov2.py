# Copyright (c) mmselfdet contributors. All rights reserved.
"""MoCo v2 on scene crops (Chen et al. 2020), the baseline of every paper."""
from typing import Dict, Sequence

import torch
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmselfdet.registry import MODELS
from ..utils import FeatureQueue, build_momentum_encoder, momentum_keys
from .base import BaseSelfSupervisor, ViewInputs, ViewSamples


@MODELS.register_module()
class MoCoV2(BaseSelfSupervisor):
    """MoCo v2: query view through the online encoder, key view through a
    momentum encoder, InfoNCE against a queue of past keys.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Projector config (:class:`MLPProjector`).
        head (dict): Loss head config (:class:`QueueContrastiveHead`).
        queue_len (int): Number of negative keys K. Defaults to 65536.
        feat_dim (int): Embedding dimension. Defaults to 128.
        momentum (float): mmengine EMA momentum; 0.001 is MoCo's m=0.999.
        shuffle_bn (bool): Shuffle the key batch across ranks before the
            momentum encoder (MoCo's shuffle-BN). Defaults to True.
        views (Sequence[str]): Names of the query and key views.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 head: ConfigType,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 shuffle_bn: bool = True,
                 views: Sequence[str] = ('view1', 'view2'),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, views=views,
                         init_cfg=init_cfg)
        if len(self.views) != 2:
            raise ValueError(f'MoCoV2 needs exactly two views (query, key), '
                             f'got views={list(self.views)}')
        self.momentum_encoder = build_momentum_encoder(
            *self.online_modules, momentum=momentum)
        self.queue = FeatureQueue(queue_len, feat_dim)
        self.shuffle_bn = shuffle_bn

    def loss(self, inputs: ViewInputs,
             data_samples: ViewSamples) -> Dict[str, Tensor]:
        img_q, img_k = self.get_views(inputs)  # (N, 3, H, W) each
        query = self.neck(self.backbone(img_q))  # (N, D)

        # update the key encoder before computing keys (MoCo order)
        key = momentum_keys(self.momentum_encoder, img_k,
                            online=torch.nn.Sequential(*self.online_modules),
                            shuffle_bn=self.shuffle_bn)  # (N, D)
        losses = self.head.loss(query, key, self.queue.get())
        self.queue.enqueue(key)
        return losses
