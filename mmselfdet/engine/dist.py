# Copyright (c) mmselfdet contributors. All rights reserved.
"""Distributed start-up that also works on CPU-only machines."""
import datetime
import gc
import os
import warnings
from typing import Any, Callable, List, Optional

import torch
import torch.distributed as torch_dist


def init_cpu_dist_if_needed(launcher: str,
                            backend: Optional[str] = None,
                            timeout: Optional[float] = None) -> bool:
    """Initialise a ``gloo`` process group when no GPU is available.

    mmengine 0.10.7's ``init_dist`` for the ``pytorch`` launcher calls
    ``torch.cuda.set_device`` and fails on CPU machines. A process group
    that exists before the Runner is built is accepted by the Runner (it
    skips its own initialisation). Call this from the training script.

    Args:
        launcher (str): 'none', 'pytorch' (torchrun) or 'slurm'.
        backend (str, optional): Force a backend; default 'gloo' on CPU.
        timeout (float, optional): Seconds a collective may wait for the
            other ranks before it raises (a rank that hangs or died then
            ends the job instead of blocking it); None keeps torch's
            default (30 min for gloo).

    Returns:
        bool: True if this function created the process group; the caller
        must then use a CPU DDP wrapper (``device_ids=None``).
    """
    if launcher == 'none' or torch_dist.is_initialized():
        return False
    if torch.cuda.is_available() and backend is None:
        return False  # mmengine's own init (nccl) is right on GPUs
    if launcher == 'slurm':
        # map SLURM's variables onto torchrun's
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            node_list = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1')
    elif launcher != 'pytorch':
        raise ValueError(f'unsupported launcher "{launcher}" (none, pytorch, '
                         'slurm)')
    kwargs = {} if timeout is None else dict(
        timeout=datetime.timedelta(seconds=float(timeout)))
    torch_dist.init_process_group(backend=backend or 'gloo', **kwargs)
    return True


CPU_DDP_WRAPPER = dict(type='MMDistributedDataParallel', device_ids=None)


def prepare_launch(cfg, config_path: str, work_dir: Optional[str],
                   launcher: str) -> None:
    """What tools/train.py and tools/test.py both do before building the
    Runner: the work dir (``--work-dir``, the config's, or
    ``work_dirs/<config name>``), the launcher, and on CPU-only machines a
    gloo process group (timeout ``env_cfg.dist_cfg.timeout`` seconds, as
    mmengine's own start-up reads it) with a CPU DDP wrapper."""
    import os.path as osp
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
    if init_cpu_dist_if_needed(launcher, timeout=timeout):
        cfg.model_wrapper_cfg = dict(CPU_DDP_WRAPPER)


def _live_gloo_threads() -> List[str]:
    """Names of this process's native gloo threads (Linux; [] elsewhere)."""
    task_dir = '/proc/self/task'
    if not os.path.isdir(task_dir):
        return []
    names = []
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, 'comm')) as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended meanwhile
            continue
    return [n for n in names if 'gloo' in n]


def finish_launch(succeeded: bool = True) -> None:
    """End a distributed run while the interpreter is still fully alive.

    Order: collect the garbage the caller's dropped Runner left (its DDP
    reducer holds the process group; its data loader iterators hold worker
    processes and threads) -> ``barrier`` (only after success: after an
    error the other ranks never reach theirs) -> ``destroy_process_group``
    -> collect again. With the Runner gone, destroying the group frees the
    gloo backend: its worker threads are joined and its sockets closed
    here. Otherwise those threads outlive ``destroy_process_group`` (which
    only unregisters the group) into interpreter shutdown, where one that
    drops a finished work's tensors needs the GIL, is stopped by the
    finalising interpreter and can abort the rank ("terminate called
    without an active exception", SIGABRT) after a finished run.

    Args:
        succeeded (bool): Whether the run finished without an exception.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    gc.collect()
    if succeeded:
        torch_dist.barrier()
        torch_dist.destroy_process_group()
    else:
        try:
            torch_dist.destroy_process_group()
        except Exception as e:  # the run's own error is the one to see
            warnings.warn(f'destroy_process_group after a failed run: {e}')
    gc.collect()
    left = _live_gloo_threads()
    if succeeded and left:
        warnings.warn(
            f'{len(left)} gloo threads ({", ".join(sorted(left))}) are still '
            'alive after destroy_process_group: something still holds the '
            'process group (a Runner or model kept after the run, or '
            'torch.distributed.nn imported after init_process_group, whose '
            'group=WORLD default arguments keep it); the process may abort '
            'at exit (docs/reliability.md, Distributed)')


def run_launched(build_runner: Callable[[], Any],
                 method: str = 'train') -> None:
    """Build the Runner, call ``runner.<method>()`` and end the distributed
    run with :func:`finish_launch`, also when building or running raised.

    The Runner is dropped before the teardown so that destroying the
    process group really frees it (see :func:`finish_launch`); so is what
    ``runner.<method>()`` returns (``Runner.train`` returns the
    DDP-wrapped model, which holds the process group).

    Args:
        build_runner (Callable): Returns the Runner, e.g.
            ``lambda: Runner.from_cfg(cfg)``.
        method (str): The Runner method to call: 'train' or 'test'.
    """
    succeeded = False
    runner = None
    try:
        runner = build_runner()
        getattr(runner, method)()
        succeeded = True
    finally:
        runner = None  # noqa: F841 (the teardown needs it gone)
        finish_launch(succeeded)
