# Copyright (c) mmselfdet contributors. All rights reserved.
"""DetCo (Xie et al., ICCV 2021): multi-stage global / local contrast."""
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmselfdet.registry import MODELS
from ..utils import (FeatureQueue, build_momentum_encoder, momentum_keys,
                     split_jigsaw)
from .base import BaseSelfSupervisor, ViewInputs, ViewSamples


@MODELS.register_module()
class DetCo(BaseSelfSupervisor):
    """MoCo v2 on every backbone stage, with jigsaw local views.

    Views: ``view1`` / ``view2`` (global crops, query / key) and ``local1`` /
    ``local2`` (3x3 jigsaw tiles of independent crops of the same image,
    query / key; see ``JigsawPatches``). Per stage s, with the query
    encoder's global (g) and local (l) embeddings and the key encoder's:

    * global<->global: InfoNCE(g_q, g_k; global queue s)
    * local<->local:   InfoNCE(l_q, l_k; local queue s)
    * local->global:   InfoNCE(l_q, g_k; global queue s)

    total = sum_s w_s * (gg + ll + lg). Asymmetric (query -> key) as MoCo
    v2. No official code exists: these choices are documented in
    ``configs/detco/README.md``.

    Args:
        backbone (dict): Backbone with ``out_indices=(0, 1, 2, 3)``.
        neck (dict): :class:`MultiStageProjector` config.
        head (dict): :class:`QueueContrastiveHead` config.
        stage_weights (Sequence[float]): w_s per stage. Defaults to
            (0.1, 0.4, 0.7, 1.0).
        queue_len (int): Keys per queue. Defaults to 65536.
        feat_dim (int): Embedding dim. Defaults to 128.
        momentum (float): mmengine EMA momentum (0.001 == m=0.999).
        shuffle_bn (bool): Shuffle-BN for the key encoder.
        patch_size (int, optional): Side of a jigsaw patch (drops padding of
            the data preprocessor); None = tile side / grid.
        views (Sequence[str]): Global query, global key, local query, local
            key view names.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 head: ConfigType,
                 stage_weights: Sequence[float] = (0.1, 0.4, 0.7, 1.0),
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 shuffle_bn: bool = True,
                 patch_size: Optional[int] = None,
                 views: Sequence[str] = ('view1', 'view2', 'local1',
                                         'local2'),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, views=views,
                         init_cfg=init_cfg)
        if len(self.views) != 4:
            raise ValueError('DetCo needs 4 views (global q, global k, local '
                             f'q, local k), got {list(self.views)}')
        n = len(self.neck.global_mlps)
        if len(stage_weights) != n:
            raise ValueError(f'{len(stage_weights)} stage_weights for {n} '
                             'stages')
        self.stage_weights = tuple(stage_weights)
        self.patch_size = patch_size
        self.momentum_encoder = build_momentum_encoder(
            *self.online_modules, momentum=momentum)
        self.global_queue = FeatureQueue(queue_len, feat_dim, num_queues=n)
        self.local_queue = FeatureQueue(queue_len, feat_dim, num_queues=n)
        self.shuffle_bn = shuffle_bn

    def _encode(self, backbone: nn.Module, neck: nn.Module, img: Tensor,
                local: bool) -> List[Tensor]:
        if local:
            patches = split_jigsaw(img, self.neck.grid, self.patch_size)
            return neck.forward_local(backbone(patches))  # S x (N, D)
        return neck.forward_global(backbone(img))  # S x (N, D)

    def _keys(self, img: Tensor, local: bool,
              online: Optional[nn.Module] = None) -> List[Tensor]:
        """Normalised keys per stage (:func:`momentum_keys`); the EMA is
        updated from ``online`` first when given."""
        return momentum_keys(
            self.momentum_encoder, img, online=online,
            encode=lambda enc, x: self._encode(enc[0], enc[1], x, local),
            shuffle_bn=self.shuffle_bn)

    def loss(self, inputs: ViewInputs,
             data_samples: ViewSamples) -> Dict[str, Tensor]:
        g_q, g_k, l_q, l_k = self.get_views(inputs)
        q_global = self._encode(self.backbone, self.neck, g_q, local=False)
        q_local = self._encode(self.backbone, self.neck, l_q, local=True)
        k_global = self._keys(g_k, local=False,
                              online=nn.Sequential(*self.online_modules))
        k_local = self._keys(l_k, local=True)

        losses: Dict[str, Tensor] = {}
        for s, w in enumerate(self.stage_weights):
            gq, lq = self.global_queue.get(s), self.local_queue.get(s)
            name = f'res{s + 2}_'
            losses.update(self.head.loss(q_global[s], k_global[s], gq,
                                         weight=w, prefix=name + 'gg_'))
            losses.update(self.head.loss(q_local[s], k_local[s], lq,
                                         weight=w, prefix=name + 'll_'))
            losses.update(self.head.loss(q_local[s], k_global[s], gq,
                                         weight=w, prefix=name + 'lg_'))
        for s in range(len(self.stage_weights)):
            self.global_queue.enqueue(k_global[s], index=s)
            self.local_queue.enqueue(k_local[s], index=s)
        return losses
