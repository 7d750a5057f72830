# Copyright (c) mmselfdet contributors. All rights reserved.
"""Train a pretraining (or downstream) config with mmengine's Runner.

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] \
        [--amp] [--auto-scale-lr] [--cfg-options k=v ...] [--launcher ...]

Also runs distributed on CPU-only machines (``tools/dist_train.sh CONFIG 2``
uses the gloo backend when there is no GPU; ``env_cfg.dist_cfg.timeout``
bounds how long ranks wait for a hung peer).

``--resume`` after a crash or a kill continues where the latest checkpoint
left off (iteration, optimizer, schedules, queues, momentum encoders, hook
state, RNG states, data order); see docs/reliability.md.
"""
import argparse
import difflib
import os
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic mixed precision (fp16)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the real batch size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value (xxx=yyy format)')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# optimizer wrapper -> its AMP twin (``--amp``)
AMP_OF = {
    'OptimWrapper': 'AmpOptimWrapper',
    'NonFiniteGuardOptimWrapper': 'NonFiniteGuardAmpOptimWrapper',
}


def check_model_type(cfg: Config) -> None:
    """Fail early, naming the key, when ``model.type`` is not registered."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_type = cfg.get('model', {}).get('type')
    if model_type is None:
        raise KeyError(f'{cfg.filename}: the config has no "model.type"')
    if isinstance(model_type, str) and MODELS.get(model_type) is None:
        close = difflib.get_close_matches(model_type, MODELS.module_dict, 5)
        raise KeyError(
            f'{cfg.filename}: model.type="{model_type}" is not a registered '
            f'model (did you mean one of {close}? Is "mmselfdet" in '
            'custom_imports?)')


def main():
    args = parse_args()
    import mmselfdet  # noqa: F401  (resolves `mmselfdet::` config bases)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    check_model_type(cfg)

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper in AMP_OF.values():
            print('AMP is already enabled in the config.', file=sys.stderr)
        else:
            # the non-finite guard keeps guarding under AMP
            cfg.optim_wrapper.type = AMP_OF.get(optim_wrapper,
                                                'AmpOptimWrapper')
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise KeyError(f'{args.config}: --auto-scale-lr needs '
                           '"auto_scale_lr.base_batch_size" in the config')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # work dir, launcher; on CPU-only machines gloo + a CPU DDP wrapper
    # (mmengine cannot start torchrun / SLURM jobs there itself)
    from mmselfdet.engine.dist import prepare_launch, run_launched
    prepare_launch(cfg, args.config, args.work_dir, args.launcher)

    # the Runner is dropped and the process group destroyed (after a
    # barrier when the run succeeded) before the interpreter shuts down;
    # also when the run raised
    run_launched(lambda: Runner.from_cfg(cfg), 'train')


if __name__ == '__main__':
    main()
