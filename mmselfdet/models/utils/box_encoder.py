# Copyright (c) mmselfdet contributors. All rights reserved.
"""The box encoder of the box-level methods (InsLoc, SoCo): image -> backbone
-> [neck] -> RoI pooling -> box embedder -> [projector], with named parts,
so online and target networks are reached by name, never by position."""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmselfdet.registry import MODELS

ModuleOrCfg = Union[nn.Module, dict]


class EncoderFeatures(NamedTuple):
    """Feature maps of one batch: ``backbone`` (the backbone outputs, e.g.
    the heat map's input) and ``pyramid`` (what the RoI pooler reads: the
    neck outputs, or the backbone outputs without a neck)."""
    backbone: Tuple[Tensor, ...]
    pyramid: Tuple[Tensor, ...]


def _part(part: Optional[ModuleOrCfg]) -> Optional[nn.Module]:
    if part is None or isinstance(part, nn.Module):
        return part
    return MODELS.build(part)


@MODELS.register_module()
class BoxEncoder(BaseModule):
    """Boxes of an image batch -> one embedding per box and pooled level.

    The algorithms keep their online parts as their own children
    (``backbone``, ``neck``, ...: the checkpoint keys the exporter
    transfers) and see them as a box encoder through
    :meth:`from_parts`; the target / key network is an EMA of a
    ``BoxEncoder`` (keys ``<ema>.module.backbone.*``, ...).

    Args:
        backbone (nn.Module | dict): Backbone.
        roi_pooler (nn.Module | dict): :class:`MultiLevelRoIPooler`.
        box_embedder (nn.Module | dict): Pooled RoI features -> (R, D);
            one embedder for every pooled level.
        neck (nn.Module | dict, optional): FPN; None pools the backbone
            outputs (C4).
        projector (nn.Module | dict, optional): MLP after the embedder
            (SoCo).
    """

    def __init__(self,
                 backbone: ModuleOrCfg,
                 roi_pooler: ModuleOrCfg,
                 box_embedder: ModuleOrCfg,
                 neck: Optional[ModuleOrCfg] = None,
                 projector: Optional[ModuleOrCfg] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = _part(backbone)
        self.neck = _part(neck)
        self.roi_pooler = _part(roi_pooler)
        self.box_embedder = _part(box_embedder)
        self.projector = _part(projector)

    @classmethod
    def from_parts(cls, owner: nn.Module) -> 'BoxEncoder':
        """A box encoder over ``owner``'s own ``backbone``, ``neck``,
        ``roi_pooler``, ``box_embedder`` and ``projector`` (the same module
        objects, no copy; a missing part is None)."""
        return cls(**{name: getattr(owner, name, None)
                      for name in ('backbone', 'roi_pooler', 'box_embedder',
                                   'neck', 'projector')})

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Load the positional layout of before (the EMA of an
        ``nn.Sequential`` of the parts present, in the order backbone,
        neck, box_embedder, projector: ``<prefix>0.*``, ``<prefix>1.*``, ...)
        under the part names."""
        names = [n for n in ('backbone', 'neck', 'box_embedder', 'projector')
                 if getattr(self, n) is not None]
        for key in [k for k in state_dict if k.startswith(prefix)]:
            index, _, rest = key[len(prefix):].partition('.')
            if index.isdigit() and int(index) < len(names):
                state_dict[f'{prefix}{names[int(index)]}.{rest}'] = \
                    state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def features(self, img: Tensor) -> EncoderFeatures:
        """Backbone and pooled-level features of a (N, 3, H, W) batch."""
        outs = self.backbone(img)
        pyramid = self.neck(outs) if self.neck is not None else outs
        return EncoderFeatures(tuple(outs), tuple(pyramid))

    def embed_pooled(self, pooled: Sequence[Tensor]) -> List[Tensor]:
        """L x (R, C, S, S) pooled levels -> L x (R, D), the embedder (and
        projector) run once on all levels together, box-major (the L levels
        of box 0, then of box 1, ...), so that a contiguous part of the
        batch holds whole boxes of whole images (``SplitBN``)."""
        num, num_levels = pooled[0].size(0), len(pooled)
        x = torch.stack(list(pooled), dim=1).flatten(0, 1)  # (R * L, C, S, S)
        emb = self.box_embedder(x)  # (R * L, D)
        if self.projector is not None:
            emb = self.projector(emb)  # (R * L, D')
        return list(emb.unflatten(0, (num, num_levels)).unbind(1))  # L x (R, D')

    def embed(self, feats: Sequence[Tensor], rois: Tensor) -> List[Tensor]:
        """Embeddings of ``rois`` (R, 5) on ``feats`` (the ``pyramid``):
        one (R, D) per pooled level (one level with ``mode='size'``)."""
        return self.embed_pooled(self.roi_pooler(feats, rois))

    def forward(self, img: Tensor, rois: Tensor) -> List[Tensor]:
        """:meth:`embed` of ``rois`` on the features of ``img``."""
        return self.embed(self.features(img).pyramid, rois)
