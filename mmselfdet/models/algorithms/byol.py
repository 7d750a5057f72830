# Copyright (c) mmselfdet contributors. All rights reserved.
"""BYOL (Grill et al. 2020): the baseline regression method SoCo builds on."""
from typing import Dict, Sequence

import torch
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmselfdet.registry import MODELS
from ..utils import build_momentum_encoder
from .base import BaseSelfSupervisor, ViewInputs, ViewSamples


@MODELS.register_module()
class BYOL(BaseSelfSupervisor):
    """Online backbone + projector + predictor regress the target network's
    projection of the other view; symmetric over the two views.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Projector config.
        head (dict): :class:`BYOLHead` config (holds the predictor).
        momentum (float): Start momentum, mmengine convention (BYOL's
            tau=0.996 is 0.004). Defaults to 0.004.
        end_momentum (float): Momentum at the end of training (cosine
            schedule, tau -> 1 is 0.0). The schedule length comes from
            :class:`MomentumScheduleHook`. Defaults to 0.0.
        views (Sequence[str]): The two view names.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 head: ConfigType,
                 momentum: float = 0.004,
                 end_momentum: float = 0.0,
                 views: Sequence[str] = ('view1', 'view2'),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, views=views,
                         init_cfg=init_cfg)
        if len(self.views) != 2:
            raise ValueError(f'BYOL needs exactly two views, got '
                             f'{list(self.views)}')
        self.target_net = build_momentum_encoder(
            *self.online_modules, momentum=momentum,
            end_momentum=end_momentum)

    def loss(self, inputs: ViewInputs,
             data_samples: ViewSamples) -> Dict[str, Tensor]:
        img1, img2 = self.get_views(inputs)  # (N, 3, H, W) each
        z1 = self.neck(self.backbone(img1))  # (N, D)
        z2 = self.neck(self.backbone(img2))  # (N, D)
        with torch.no_grad():
            self.target_net.update_parameters(
                torch.nn.Sequential(*self.online_modules))
            t1 = self.target_net(img1)  # (N, D)
            t2 = self.target_net(img2)  # (N, D)
        l12 = self.head.loss(z1, t2)
        l21 = self.head.loss(z2, t1)
        return dict(loss_byol=l12['loss_byol'] + l21['loss_byol'],
                    byol_cos=(l12['byol_cos'] + l21['byol_cos']) / 2)
