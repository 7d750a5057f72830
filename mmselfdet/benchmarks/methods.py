# Copyright (c) mmselfdet contributors. All rights reserved.
"""The methods the toy benchmark (and the quickstart) knows: the rows of
the one method table (:data:`mmselfdet.methods.METHODS`) with a toy config,
seen through the toy benchmark's names (:class:`ToyMethod`). Declare a
method in :mod:`mmselfdet.methods`, not here.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from mmselfdet.methods import METHODS as ALL_METHODS
from mmselfdet.methods import RENAMED, Method


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
        label: The row label of the tables.
    """
    config: str
    object_level: bool = False
    prepare: Optional[Tuple[str, List[str]]] = None
    pipeline: bool = False
    label: str = ''

    @classmethod
    def of(cls, m: Method) -> 'ToyMethod':
        """The toy view of a row of the method table."""
        toy = m.toy_prepare.toy if m.toy_prepare else None
        return cls(m.toy_config, m.object_level,
                   (toy[0], list(toy[1])) if toy else None, m.pipeline,
                   m.label)


METHODS: Dict[str, ToyMethod] = {
    name: ToyMethod.of(m) for name, m in ALL_METHODS.items() if m.toy_config}


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


__all__ = ['ToyMethod', 'METHODS', 'RENAMED', 'check_methods']
