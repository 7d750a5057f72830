# Copyright (c) mmselfdet contributors. All rights reserved.
"""Distributed start-up that also works on CPU-only machines."""
import datetime
import os
from typing import Optional

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


def finish_launch() -> None:
    """End a distributed run cleanly: wait for every rank, then destroy the
    process group. Exiting with a live gloo group can abort a rank at
    interpreter shutdown ("terminate called without an active exception",
    SIGABRT) after training itself succeeded."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
