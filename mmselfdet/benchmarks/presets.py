# Copyright (c) mmselfdet contributors. All rights reserved.
"""Presets of the toy benchmark: which inits, budgets, splits and seeds.

Every number of a preset is visible here so that a table can always be
traced to its protocol (the table's header repeats it).
"""
from dataclasses import dataclass, field, replace
from typing import Dict, Tuple

# detector name -> config (relative to the repository); every row of one
# detector uses the same config, the pretrained rows add ``load_from``
DETECTORS: Dict[str, str] = {
    # backbone transfer, every method
    'retinanet': 'configs/benchmarks/retinanet_r18_fpn_1xb8-12e_toy.py',
    # backbone + FPN + box head transfer, object-level methods
    'two-stage': 'configs/benchmarks/faster-rcnn_r18_fpn-4conv1fc_1xb8_toy.py',
}


@dataclass(frozen=True)
class Preset:
    """One benchmark protocol.

    Args:
        methods: Pretraining methods (``random`` is always added first).
        pretrain_iters: Optimizer steps of every method's pretraining (batch
            32 in every toy config, so equal images seen); None keeps each
            toy config's own budget.
        splits: Fine-tuning splits: ``'10pct'`` (the fixed 10 % split of toy
            ``train``, seed 0 of ``tools/make_low_data_splits.py``) and/or
            ``'100pct'``.
        finetune_iters: Fine-tuning steps (batch 8) per split.
        seeds: Fine-tuning seeds (the detector's random parts and data
            order; the random row's backbone too).
        detectors: Detectors (keys of :data:`DETECTORS`); ``two-stage`` only
            runs for object-level methods and random init.
        probe_seeds: Init seeds of the random-init probe (its spread is the
            floor a learned backbone must clear).
        fair_init: Start every pretraining from mmdet's ResNet default
            (``zero_init_residual=True``), the init the random row gets.
        toy_size: Images per toy split (unlabeled, train, val).
        jobs: Units run side by side (1 thread each).
    """
    methods: Tuple[str, ...]
    pretrain_iters: int = None
    splits: Tuple[str, ...] = ('10pct', )
    finetune_iters: Dict[str, int] = field(
        default_factory=lambda: {'10pct': 180, '100pct': 300})
    seeds: Tuple[int, ...] = (0, 1, 2)
    detectors: Tuple[str, ...] = ('retinanet', )
    probe_seeds: Tuple[int, ...] = (0, 1, 2)
    fair_init: bool = True
    toy_size: Tuple[int, int, int] = (1000, 200, 100)
    jobs: int = 2

    def with_(self, **kw) -> 'Preset':
        return replace(self, **kw)


ALL_METHODS = ('mocov2', 'byol', 'insloc', 'detco', 'mocov2-objcrop',
               'soco-ss', 'soco-e2e', 'simdetr')

PRESETS: Dict[str, Preset] = {
    # the README's main job: <= 30 min on the 2-core CPU machine
    'cpu': Preset(methods=('mocov2', 'insloc'), pretrain_iters=300),
    # every method, for a long background run (docs/results.md): the
    # low-data split only (the 100 % split with 3 seeds would add ~4
    # CPU-hours on the 2-core machine; the gpu preset runs both)
    'cpu-all': Preset(methods=ALL_METHODS, pretrain_iters=300,
                      detectors=('retinanet', 'two-stage')),
    # every method on one H100 in two 10-minute parts (--part 1/2, 2/2)
    'gpu': Preset(methods=ALL_METHODS, pretrain_iters=2000,
                  splits=('10pct', '100pct'),
                  detectors=('retinanet', 'two-stage'), jobs=4),
}
