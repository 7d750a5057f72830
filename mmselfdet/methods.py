# Copyright (c) mmselfdet contributors. All rights reserved.
"""The one table of pretraining methods.

A method is declared once, in :data:`METHODS`; everything that needs a
per-method fact reads it from here:

* the toy benchmark and the quickstart (:mod:`mmselfdet.benchmarks.methods`:
  the rows with a ``toy_config``);
* own-data pretraining (:mod:`mmselfdet.pretrain`, ``tools/pretrain.py``:
  the rows with a ``paper_config``);
* the exporter's default detector per ``model.type``
  (:data:`DEFAULT_DOWNSTREAM`, used by :mod:`mmselfdet.export.exporter`).

The transfer prefixes are keyed by ``model.type`` too and stay with the
exporter (:data:`mmselfdet.export.transfer.TRANSFER_SETS`): a new
``model.type`` needs an entry there. See ``docs/adding_a_method.md``.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

IMAGENET_1K, COCO_TRAIN = 1_281_167, 118_287  # images of the paper datasets


@dataclass(frozen=True)
class Preparation:
    """An offline step a method needs before training.

    Args:
        kind: ``'selective_search'`` (proposals by
            ``tools/generate_proposals.py``) or ``'detr_stages'`` (stages A-B
            of ``tools/detr_pretrain/``: feature-cluster proposals, k-means
            pseudo-classes; needs a self-supervised backbone).
        toy: The toy benchmark's command: (output relative to the toy data
            root, command template with ``{root}`` / ``{out}``), run once;
            None where the toy run does it itself (the DETR pipeline).
    """
    kind: str
    toy: Optional[Tuple[str, Tuple[str, ...]]] = None


SELECTIVE_SEARCH = Preparation('selective_search', toy=(
    'proposals/ss_fast_unlabeled.json',
    ('tools/generate_proposals.py', '{root}/unlabeled', '--ann-file',
     '{root}/annotations/unlabeled.json', '--out', '{out}', '--mode', 'fast',
     '--max-side', '128', '--workers', '2')))
DETR_STAGES = Preparation('detr_stages')
PREPARATION_KINDS = (SELECTIVE_SEARCH.kind, DETR_STAGES.kind)


@dataclass(frozen=True)
class Method:
    """One pretraining method.

    Args:
        name: The name on every command line (``tools/pretrain.py NAME``,
            ``toy_table.py --methods NAME``).
        label: The row label of the toy tables.
        model_type: ``model.type`` of its configs (the key of the exporter's
            tables).
        toy_config: Toy pretraining config (R18, <= 64 px), relative to the
            repository; None: not in the toy benchmark.
        paper_config: The paper's config; None: not offered for own-data
            pretraining (e.g. it needs ground-truth boxes).
        paper_images: Images of the paper config's dataset (the reference of
            the own-data budget).
        downstream: Detector config the own-data export is checked against
            and whose ``load_from`` line is printed.
        benchmark: Set on ONE row per ``model_type``: the detector config
            the exporter checks a checkpoint of that type against when no
            ``--downstream-config`` is given (:data:`DEFAULT_DOWNSTREAM`).
        object_level: True when it pretrains backbone + FPN + box head (the
            toy two-stage detector takes them too).
        prepare: The offline preparation of the paper config (own-data
            pretraining runs it), or None.
        toy_prepare: The toy config's preparation (its ``toy`` command is
            run by the toy benchmark), or None: the toy configs may differ
            (the toy object-aware crops use the toy ground-truth boxes).
        pipeline: True for a method that runs its own pipeline and detector
            in the toy benchmark (the DETR pretraining), not a
            ``tools/train.py`` config.
    """
    name: str
    label: str
    model_type: str
    toy_config: Optional[str] = None
    paper_config: Optional[str] = None
    paper_images: int = 0
    downstream: Optional[str] = None
    benchmark: Optional[str] = None
    object_level: bool = False
    prepare: Optional[Preparation] = None
    toy_prepare: Optional[Preparation] = None
    pipeline: bool = False

    @property
    def needs_backbone(self) -> bool:
        """Own-data pretraining needs ``--backbone CKPT`` (DETR stages)."""
        return self.prepare is not None and \
            self.prepare.kind == DETR_STAGES.kind


def _bench(folder: str) -> str:
    return f'configs/benchmarks/{folder}/mask-rcnn_r50_fpn_ms-1x_coco.py'


_ROWS = (
    Method('mocov2', 'MoCo v2', 'MoCoV2',
           toy_config='configs/mocov2/mocov2_r18_1xb32-180it_toy.py',
           paper_config='configs/mocov2/mocov2_r50_8xb32-coslr-200e_in1k.py',
           paper_images=IMAGENET_1K, downstream=_bench('mocov2'),
           benchmark=_bench('mocov2')),
    Method('byol', 'BYOL', 'BYOL',
           toy_config='configs/byol/byol_r18_1xb32-110it_toy.py',
           paper_config='configs/byol/byol_r50_16xb256-coslr-200e_in1k.py',
           paper_images=IMAGENET_1K, downstream=_bench('byol'),
           benchmark=_bench('byol')),
    Method('insloc', 'InsLoc (FPN)', 'InsLoc',
           toy_config='configs/insloc/insloc_r18_fpn_1xb32-150it_toy.py',
           paper_config='configs/insloc/'
           'insloc_r50_fpn_8xb32-coslr-200e_in1k.py',
           paper_images=IMAGENET_1K, downstream=_bench('insloc'),
           benchmark=_bench('insloc'), object_level=True),
    Method('detco', 'DetCo', 'DetCo',
           toy_config='configs/detco/detco_r18_1xb32-60it_toy.py',
           paper_config='configs/detco/detco_r50_8xb32-coslr-200e_in1k.py',
           paper_images=IMAGENET_1K, downstream=_bench('detco'),
           benchmark=_bench('detco')),
    Method('mocov2-objcrop', 'MoCo v2 + object-aware crops (toy: gt boxes)',
           'MoCoV2',
           toy_config='configs/objcrop/mocov2-objcrop_r18_1xb32-150it_toy.py',
           paper_config='configs/objcrop/'
           'mocov2-objcrop_r50_8xb32-coslr-200e_coco.py',
           paper_images=COCO_TRAIN, downstream=_bench('objcrop'),
           prepare=SELECTIVE_SEARCH),
    Method('byol-objcrop', 'BYOL + object-aware crops (toy: gt boxes)',
           'BYOL',
           toy_config='configs/objcrop/byol-objcrop_r18_1xb32-110it_toy.py',
           paper_config='configs/objcrop/'
           'byol-objcrop_r50_8xb32-coslr-200e_coco.py',
           paper_images=COCO_TRAIN, downstream=_bench('byol'),
           prepare=SELECTIVE_SEARCH),
    # SoCo on the toy ground-truth boxes: the toy table's oracle row (own
    # images have no boxes: no paper config)
    Method('soco-gtboxes', 'SoCo, ground-truth boxes (oracle)', 'SoCo',
           toy_config='configs/soco/soco-gtboxes_r18_fpn_1xb32-150it_toy.py',
           object_level=True),
    Method('soco-ss', 'SoCo, selective search', 'SoCo',
           toy_config='configs/soco/soco-ss_r18_fpn_1xb32-150it_toy.py',
           paper_config='configs/soco/soco_r50_fpn_8xb32-lars-100e_in1k.py',
           paper_images=IMAGENET_1K, downstream=_bench('soco'),
           benchmark=_bench('soco'), object_level=True,
           prepare=SELECTIVE_SEARCH, toy_prepare=SELECTIVE_SEARCH),
    Method('soco-e2e', 'end-to-end SoCo (heat map)', 'SoCo',
           toy_config='configs/soco/soco-e2e_r18_fpn_1xb32-150it_toy.py',
           paper_config='configs/soco/'
           'soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py',
           paper_images=IMAGENET_1K, downstream=_bench('soco-e2e'),
           object_level=True),
    Method('simdetr', 'DETR pretraining (SimDETR-style)', 'DeformableDETR',
           toy_config='configs/simdetr/'
           'simdetr_deformable-detr_r18_1xb8-300it_toy.py',
           paper_config='configs/simdetr/'
           'simdetr_deformable-detr_r50_16xb2-50e_coco.py',
           paper_images=COCO_TRAIN,
           downstream='configs/simdetr/'
           'deformable-detr_r50_16xb2-50e_coco-ft.py',
           benchmark='configs/benchmarks/detr-pretrain/'
           'deformable-detr_r50_16xb2-50e_coco.py',
           prepare=DETR_STAGES, pipeline=True),
    Method('simdetr-detr', 'DETR pretraining (SimDETR-style), stock DETR',
           'DETR',
           paper_config='configs/simdetr/simdetr_detr_r50_8xb2-150e_coco.py',
           paper_images=COCO_TRAIN,
           downstream='configs/simdetr/detr_r50_8xb2-150e_coco-ft.py',
           benchmark='configs/benchmarks/detr-pretrain/'
           'detr_r50_8xb2-150e_coco.py',
           prepare=DETR_STAGES),
)
METHODS: Dict[str, Method] = {m.name: m for m in _ROWS}

# old method name -> (new name, what it is): refused with this explanation
RENAMED: Dict[str, Tuple[str, str]] = {
    'soco': ('soco-gtboxes', 'SoCo on the toy ground-truth boxes, the '
             'oracle row; the proposal-based rows are soco-ss and soco-e2e'),
}

# model.type -> the detector config the exporter checks against by default
DEFAULT_DOWNSTREAM: Dict[str, str] = {
    m.model_type: m.benchmark for m in _ROWS if m.benchmark}


def _check_table() -> None:
    """Fail at import on a table that contradicts itself."""
    for m in _ROWS:
        if m.paper_config and not (m.paper_images and m.downstream):
            raise ValueError(f'{__name__}: {m.name!r} has a paper_config but '
                             'no paper_images / downstream')
        for p in (m.prepare, m.toy_prepare):
            if p is not None and p.kind not in PREPARATION_KINDS:
                raise ValueError(f'{__name__}: {m.name!r}: unknown '
                                 f'preparation {p.kind!r}')
        if m.toy_prepare is not None and m.toy_prepare.toy is None:
            raise ValueError(f'{__name__}: {m.name!r}: toy_prepare '
                             f'{m.toy_prepare.kind!r} has no toy command')
    names = [m.name for m in _ROWS]
    if len(set(names)) != len(names):
        raise ValueError(f'{__name__}: duplicate method names')
    types = [m.model_type for m in _ROWS if m.benchmark]
    if len(set(types)) != len(types):
        raise ValueError(f'{__name__}: more than one row declares the '
                         f'benchmark of a model_type ({sorted(types)})')


_check_table()

__all__ = [
    'Method', 'Preparation', 'METHODS', 'RENAMED', 'DEFAULT_DOWNSTREAM',
    'SELECTIVE_SEARCH', 'DETR_STAGES', 'IMAGENET_1K', 'COCO_TRAIN'
]
