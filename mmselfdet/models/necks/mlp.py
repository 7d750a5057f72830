# Copyright (c) mmselfdet contributors. All rights reserved.
"""Projection / prediction MLPs shared by every contrastive method."""
from typing import Optional, Sequence, Union

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmselfdet.registry import MODELS


@MODELS.register_module()
class MLPProjector(BaseModule):
    """``num_layers`` Linear layers with (optional) norm + ReLU in between.

    * MoCo v2: ``MLPProjector(2048, 2048, 128)`` (no norm, avg-pool input);
    * BYOL / SoCo projector and predictor: ``norm_cfg=dict(type='BN1d')``.

    Args:
        in_channels (int): Input channels.
        hid_channels (int): Hidden channels.
        out_channels (int): Output channels.
        num_layers (int): Number of Linear layers (>= 1). Defaults to 2.
        norm_cfg (dict, optional): Norm after every hidden Linear, e.g.
            ``dict(type='BN1d')``. Defaults to None (MoCo v2).
        with_last_norm (bool): Norm after the last Linear too (SimCLR-style).
            Defaults to False.
        with_avg_pool (bool): Global-average-pool a (N, C, H, W) input first.
            Defaults to True.
        in_index (int): Which element to take when the input is a tuple of
            feature maps (the backbone's output). Defaults to -1.
        init_cfg (dict or list[dict], optional): Initialisation config.
            Defaults to None: PyTorch's default Linear init, as in the MoCo
            reference code (a N(0, 0.01) init starts MoCo almost collapsed
            and short runs never leave the chance loss).
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int,
                 num_layers: int = 2,
                 norm_cfg: Optional[dict] = None,
                 with_last_norm: bool = False,
                 with_avg_pool: bool = True,
                 in_index: int = -1,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'MLPProjector.num_layers must be >= 1, got '
                             f'{num_layers}')
        self.with_avg_pool = with_avg_pool
        self.in_index = in_index
        layers = []
        dims = [in_channels] + [hid_channels] * (num_layers - 1) + [out_channels]
        for i in range(num_layers):
            last = i == num_layers - 1
            use_norm = norm_cfg is not None and (not last or with_last_norm)
            layers.append(nn.Linear(dims[i], dims[i + 1], bias=not use_norm))
            if use_norm:
                layers.append(build_norm_layer(norm_cfg, dims[i + 1])[1])
            if not last:
                layers.append(nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Project features.

        Args:
            x: A (N, C, H, W) / (N, C) tensor, or a tuple of them.

        Returns:
            Tensor: (N, out_channels).
        """
        if isinstance(x, (tuple, list)):
            x = x[self.in_index]
        if x.dim() == 4:
            if self.with_avg_pool:
                x = x.mean(dim=(2, 3))  # (N, C)
            else:
                x = x.flatten(1)  # (N, C*H*W)
        return self.mlp(x)


