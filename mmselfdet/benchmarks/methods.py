# Copyright (c) mmselfdet contributors. All rights reserved.
"""One table of the methods the toy benchmark (and the quickstart) knows.

A method is declared once here: its toy pretraining config, whether it is
object-level (it pretrains an FPN and a box head that a two-stage detector
can take), and the offline preparation it needs. The transfer prefixes
themselves live with the exporter (:data:`mmselfdet.export.transfer.
TRANSFER_SETS`, keyed by ``model.type``).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class ToyMethod:
    """A pretraining method on the toy data.

    Args:
        config: Toy pretraining config, relative to the repository.
        object_level: True when the method pretrains backbone + FPN + box
            head (fine-tuned also in the toy two-stage detector).
        prepare: Offline preparation: (output relative to the data root,
            command template with ``{root}`` / ``{out}``), run once.
        pipeline: True for a method that runs its own pipeline and detector
            (the DETR pretraining): not a ``tools/train.py`` config.
    """
    config: str
    object_level: bool = False
    prepare: Optional[Tuple[str, List[str]]] = None
    pipeline: bool = False
    label: str = ''


_SS = ('proposals/ss_fast_unlabeled.json', [
    'tools/generate_proposals.py', '{root}/unlabeled', '--ann-file',
    '{root}/annotations/unlabeled.json', '--out', '{out}', '--mode', 'fast',
    '--max-side', '128', '--workers', '2'
])

METHODS: Dict[str, ToyMethod] = {
    'mocov2': ToyMethod('configs/mocov2/mocov2_r18_1xb32-180it_toy.py',
                        label='MoCo v2'),
    'byol': ToyMethod('configs/byol/byol_r18_1xb32-110it_toy.py',
                      label='BYOL'),
    'insloc': ToyMethod('configs/insloc/insloc_r18_fpn_1xb32-150it_toy.py',
                        object_level=True, label='InsLoc (FPN)'),
    'detco': ToyMethod('configs/detco/detco_r18_1xb32-60it_toy.py',
                       label='DetCo'),
    'mocov2-objcrop': ToyMethod(
        'configs/objcrop/mocov2-objcrop_r18_1xb32-150it_toy.py',
        label='MoCo v2 + object-aware crops'),
    'byol-objcrop': ToyMethod(
        'configs/objcrop/byol-objcrop_r18_1xb32-110it_toy.py',
        label='BYOL + object-aware crops'),
    # SoCo on the toy ground-truth boxes: the oracle row
    'soco-gtboxes': ToyMethod(
        'configs/soco/soco-gtboxes_r18_fpn_1xb32-150it_toy.py',
        object_level=True, label='SoCo, ground-truth boxes (oracle)'),
    'soco-ss': ToyMethod('configs/soco/soco-ss_r18_fpn_1xb32-150it_toy.py',
                         object_level=True, prepare=_SS,
                         label='SoCo, selective search'),
    'soco-e2e': ToyMethod('configs/soco/soco-e2e_r18_fpn_1xb32-150it_toy.py',
                          object_level=True,
                          label='end-to-end SoCo (heat map)'),
    'simdetr': ToyMethod(
        'configs/simdetr/simdetr_deformable-detr_r18_1xb8-300it_toy.py',
        pipeline=True, label='DETR pretraining (SimDETR-style)'),
}
# old method name -> (new name, what it is): refused with this explanation
RENAMED: Dict[str, Tuple[str, str]] = {
    'soco': ('soco-gtboxes', 'SoCo on the toy ground-truth boxes, the '
             'oracle row; the proposal-based rows are soco-ss and soco-e2e'),
}


def check_methods(names: List[str]) -> List[str]:
    """Error strings for unknown or renamed method names (empty: all ok)."""
    errors = [f'method {m!r} is now called {RENAMED[m][0]!r} '
              f'({RENAMED[m][1]})' for m in names if m in RENAMED]
    unknown = [m for m in names if m not in METHODS and m not in RENAMED
               and m != 'random']
    if unknown:
        errors.append(f'unknown method(s) {unknown}; choose from '
                      f'{sorted(METHODS)}')
    return errors
