# Copyright (c) mmselfdet contributors. All rights reserved.
"""Deprecated ``NonFiniteLossHook``: the guard is an optimizer wrapper now."""
import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict

from mmselfdet.registry import HOOKS

from ..optim_wrappers.nonfinite_guard import POLICIES, NonFiniteGuardMixin


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Deprecated: name the guard as the optimizer wrapper instead,
    ``optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', policy=...,
    max_skips=...)`` (``'NonFiniteGuardAmpOptimWrapper'`` for AMP).

    A thin alias kept so that configs that add it to a guarded run keep
    their meaning: before training it gives the runner's guard wrapper this
    hook's ``policy`` and ``max_skips`` (with a warning when they differ).
    Any other optimizer wrapper cannot be guarded from a hook without
    patching it, so the run stops at once with an error that names the
    config change.

    Args:
        policy (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
        max_skips (int): Skipped steps allowed per run. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, policy: str = 'stop', max_skips: int = 10) -> None:
        if policy not in POLICIES:
            raise ValueError(f'NonFiniteLossHook: policy must be one of '
                             f'{POLICIES}, got {policy!r}')
        self.policy, self.max_skips = policy, int(max_skips)

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        wrappers = (list(wrapper.optim_wrappers.values()) if isinstance(
            wrapper, OptimWrapperDict) else [wrapper])
        plain = [type(w).__name__ for w in wrappers
                 if not isinstance(w, NonFiniteGuardMixin)]
        if plain:
            raise TypeError(
                f'NonFiniteLossHook is deprecated and cannot guard '
                f'{", ".join(plain)}: the guard is an optimizer wrapper. In '
                f"the config, set optim_wrapper.type='NonFiniteGuardOptimWrap"
                f"per' ('NonFiniteGuardAmpOptimWrapper' in place of "
                f"'AmpOptimWrapper') with policy={self.policy!r}, "
                f'max_skips={self.max_skips}, and remove the '
                f'NonFiniteLossHook entry.')
        for w in wrappers:
            if (w.policy, w.max_skips) != (self.policy, self.max_skips):
                print_log(
                    f'NonFiniteLossHook (deprecated) sets the '
                    f'{type(w).__name__} to policy={self.policy!r}, '
                    f'max_skips={self.max_skips} (was {w.policy!r}, '
                    f'{w.max_skips}); set them in optim_wrapper instead.',
                    logger='current', level=logging.WARNING)
                w.set_policy(self.policy, self.max_skips)
