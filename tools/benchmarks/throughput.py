# Copyright (c) mmselfdet contributors. All rights reserved.
"""Training throughput of a config, and its ratio to the model's ceiling.

Usage:
    python tools/benchmarks/throughput.py CONFIG [--ceiling] [--steps 20]
        [--warmup 3] [--device cpu|cuda] [--batch-size B] [--workers N]
        [--threads 1] [--amp] [--time-module NAME ...] [--out FILE.json]
        [--cfg-options ...]
    # fine-tuning: our downstream config vs stock mmdet's, side by side
    python tools/benchmarks/throughput.py OURS --compare STOCK
        [--stock-options ...] [same options]

Each step is ``model.train_step(batch, optim_wrapper)`` with the config's
model, train dataloader (``Runner.build_dataloader``) and optim wrapper
(``build_optim_wrapper``), as the training loop runs it. Per step, in ms
(medians over the timed steps; on CUDA every boundary is a
``torch.cuda.synchronize``, on the CPU no sync is needed):

* ``data_wait``: waiting for the next batch of the dataloader;
* ``preprocess``: the data preprocessor (normalisation, padding and, with
  ``gpu_augment``, the batched view augmentation);
* ``fwd_bwd``: the rest of ``train_step`` minus the optimizer, i.e. the
  forward, the loss and the backward; ``backward`` is the optim wrapper's
  ``backward`` (loss scaling included), ``forward`` the remainder;
* ``optimizer``: the optim wrapper's ``step`` + ``zero_grad``.

``img_per_s`` = images / wall time of the timed steps (data wait included).
``cpu_ms_per_img``: CPU time of this process per image (all of it with
``--workers 0``); ``data_cpu_ms_per_img``: the part spent in the data wait
and the preprocessor, i.e. what the data path costs the CPU. Peak memory:
``torch.cuda.max_memory_allocated`` on CUDA, the process' maximum resident
set on the CPU. ``--ceiling``: the same model and batch shapes on synthetic
device-resident tensors (random views already normalised, the captured
batch's data samples), no dataloader and no preprocessor, measured in the
same run after the real steps; ``ratio`` = img_per_s / ceiling img_per_s.

``--time-module NAME``: the wall time of the model's submodule ``NAME``
(dotted path) inside the step, by forward pre-/post-hooks, as
``NAME_ms`` (median per step) and ``NAME_share`` (its total / the steps'
total); default: ``box_source`` when the model has it (end-to-end SoCo's
heat-map proposer with the boxes' mapping into V2 / V3; SoCo's
``ViewBoxSource`` otherwise); ``none``: no hooks (on CUDA each hook
synchronises, which costs the step a little). ``--amp``: the optim
wrapper becomes its AMP twin as ``tools/train.py --amp`` makes it (CUDA
only; fp16, see ``docs/benchmarks.md``); ``--fp32`` the other way: an
AMP config's wrapper becomes its fp32 twin (the fp32 side of an fp16 vs
fp32 figure, and AMP configs' test runs on a CPU).

``--compare STOCK`` (fine-tuning): STOCK (e.g. ``mmdet::retinanet/
retinanet_r18_fpn_1x_coco.py``) takes CONFIG's ``train_dataloader`` (the
same images, pipeline and batch) and ``--stock-options``; both are timed
in one run, their steps interleaved (A, B, A, B, ...) so load changes hit
both. ``overhead_ratio`` = CONFIG's median step / STOCK's; ``stock`` holds
STOCK's figures, ``cpu_overhead_ratio`` the ratio of CPU time per
image (steadier on shared CPUs) and ``model_diff`` the ``model`` /
``optim_wrapper`` keys whose values differ (the ratio is pure overhead
only where that list is empty).

Output: one JSON line on stdout (and in ``--out``), a table on stderr.
"""
import argparse
import copy
import datetime
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--ceiling', action='store_true',
                   help='also time the model on synthetic device tensors')
    p.add_argument('--steps', type=int, default=20, help='timed steps')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', choices=['cpu', 'cuda'])
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--workers', type=int, default=None,
                   help='DataLoader num_workers (default: the config\'s)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch.set_num_threads (default: unchanged)')
    p.add_argument('--amp', action='store_true',
                   help='the AMP twin of the optim wrapper (CUDA, fp16)')
    p.add_argument('--fp32', action='store_true',
                   help='an AMP config\'s optim wrapper replaced by its fp32 '
                   'twin (no autocast, no loss scale)')
    p.add_argument('--channels-last', action='store_true',
                   help='the model in channels_last (ChannelsLastHook\'s '
                   'conversion, RoIAlign guarded)')
    p.add_argument('--time-module', nargs='+', default=None,
                   help='submodules timed inside the step (default: '
                   'box_source when the model has it; none: no hooks)')
    p.add_argument('--compare', default=None, metavar='STOCK',
                   help='fine-tuning: time STOCK beside CONFIG')
    p.add_argument('--stock-options', nargs='+', action=DictAction,
                   help='overrides of the STOCK config')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='also write the JSON here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


class Clock:
    """Wall-clock and CPU-time sections, synchronising CUDA at each read."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == 'cuda'
        self.wall, self.cpu = {}, {}

    def now(self):
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter(), time.process_time()

    def add(self, key: str, start) -> None:
        wall, cpu = self.now()
        self.wall[key] = self.wall.get(key, 0.0) + wall - start[0]
        self.cpu[key] = self.cpu.get(key, 0.0) + cpu - start[1]

    def reset(self):
        self.wall, self.cpu = {}, {}


def timed(clock: Clock, key: str, fn):
    """``fn`` whose time is added to ``clock[key]``."""
    def wrapper(*args, **kwargs):
        start = clock.now()
        try:
            return fn(*args, **kwargs)
        finally:
            clock.add(key, start)
    return wrapper


def load_config(path, options, args):
    """The config with ``options`` and, with ``--amp``, the AMP twin of
    its optim wrapper (``tools/train.py``'s mapping)."""
    from mmengine.config import Config

    import mmselfdet  # noqa: F401  (registers; mmselfdet:: config scope)
    if '::' in path:  # a package's config, e.g. mmdet::retinanet/...py
        from mmengine.utils import get_installed_path
        package, rel = path.split('::', 1)
        path = osp.join(get_installed_path(package), '.mim', 'configs', rel)
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    if args.amp and getattr(args, 'fp32', False):
        raise ValueError('--amp and --fp32: choose one')
    if args.amp or getattr(args, 'fp32', False):
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            'train_tool', osp.join(REPO, 'tools', 'train.py'))
        train = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(train)
    if getattr(args, 'fp32', False):
        ow = cfg.optim_wrapper
        fp32_of = {amp: fp32 for fp32, amp in train.AMP_OF.items()}
        if ow.type in fp32_of:
            ow.type = fp32_of[ow.type]
            for key in ('loss_scale', 'dtype', 'use_fsdp'):
                ow.pop(key, None)
    if args.amp:
        if args.device != 'cuda':
            raise ValueError('--amp needs --device cuda (mmengine\'s '
                             'AmpOptimWrapper runs on GPUs only)')
        ow = cfg.optim_wrapper
        if ow.type not in train.AMP_OF.values():
            ow.type = train.AMP_OF.get(ow.type, 'AmpOptimWrapper')
            ow.loss_scale = 'dynamic'
    return cfg


def build(args, cfg=None):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmselfdet.registry import MODELS
    if cfg is None:
        cfg = load_config(args.config, args.cfg_options, args)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    loader_cfg = cfg.train_dataloader
    if args.batch_size is not None:
        loader_cfg.batch_size = args.batch_size
    if args.workers is not None:
        loader_cfg.num_workers = args.workers
        if args.workers == 0:
            loader_cfg.persistent_workers = False
    # warm-up + timed steps may need more batches than one pass over a small
    # benchmark set holds (e.g. 512 images at BYOL's batch 256): draw without
    # end, shuffled as the config's sampler
    sampler = loader_cfg.get('sampler') or {}
    loader_cfg.sampler = dict(type='InfiniteSampler',
                              shuffle=sampler.get('shuffle', True))
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = MODELS.build(cfg.model).to(device)
    if args.channels_last:
        from mmselfdet.models.utils.memory_format import to_channels_last
        to_channels_last(model)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    return cfg, model, optim_wrapper, loader, loader_cfg.batch_size, device


def peak_memory_mib(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_steps(model, optim_wrapper, next_batch, clock, steps, warmup):
    """Warm-up, then ``steps`` timed steps; returns per-step sections."""
    return run_interleaved([(model, optim_wrapper, next_batch, clock)],
                           steps, warmup)[0]


def run_interleaved(jobs, steps, warmup):
    """``warmup`` + ``steps`` steps of every ``(model, optim_wrapper,
    next_batch, clock)`` job, one step of each in turn; per job its timed
    steps' ``(wall, cpu)`` sections."""
    per_step = [[] for _ in jobs]
    for i in range(warmup + steps):
        for (model, optim_wrapper, next_batch, clock), out in zip(jobs,
                                                                  per_step):
            clock.reset()
            start = clock.now()
            t0 = clock.now()
            batch = next_batch()
            clock.add('data_wait', t0)
            model.train_step(batch, optim_wrapper)
            clock.add('step', start)
            if i >= warmup:
                out.append((dict(clock.wall), dict(clock.cpu)))
    return per_step


def time_module(model, clock: Clock, name: str) -> None:
    """Add the wall time of ``model.<name>``'s forward calls to
    ``clock[name]`` (forward pre-/post-hooks; no model code changed)."""
    try:
        module = model.get_submodule(name)
    except AttributeError as e:
        raise AttributeError(f'--time-module {name}: {type(model).__name__} '
                             f'has no submodule {name!r} ({e})') from None
    starts = []
    module.register_forward_pre_hook(lambda *_: starts.append(clock.now()))
    module.register_forward_hook(lambda *_: clock.add(name, starts.pop()))


def summarise(per_step, batch_size):
    keys = ('data_wait', 'preprocess', 'backward', 'optimizer', 'step')
    med = {k: 1e3 * statistics.median(w.get(k, 0.0) for w, _ in per_step)
           for k in keys}
    fwd_bwd = [w['step'] - w.get('data_wait', 0) - w.get('preprocess', 0) -
               w.get('optimizer', 0) for w, _ in per_step]
    total = sum(w['step'] for w, _ in per_step)
    cpu = sum(c['step'] for _, c in per_step)
    data_cpu = sum(c.get('data_wait', 0) + c.get('preprocess', 0)
                   for _, c in per_step)
    n_img = batch_size * len(per_step)
    return dict(img_per_s=n_img / total, step_ms=med['step'],
                data_wait_ms=med['data_wait'], preprocess_ms=med['preprocess'],
                fwd_bwd_ms=1e3 * statistics.median(fwd_bwd),
                forward_ms=1e3 * statistics.median(
                    f - w.get('backward', 0.0)
                    for f, (w, _) in zip(fwd_bwd, per_step)),
                backward_ms=med['backward'],
                optimizer_ms=med['optimizer'],
                cpu_ms_per_img=1e3 * cpu / n_img,
                data_cpu_ms_per_img=1e3 * data_cpu / n_img)


def synthetic(batch: dict, device: torch.device, seed: int) -> dict:
    """Random normalised views of the preprocessed batch's shapes, on the
    device, with its data samples."""
    gen = torch.Generator(device=device).manual_seed(seed)

    def like(x):
        return torch.randn(x.shape, generator=gen, device=device)
    inputs = batch['inputs']
    inputs = {k: like(v) for k, v in inputs.items()} if isinstance(
        inputs, dict) else like(inputs)
    return dict(inputs=inputs, data_samples=batch['data_samples'])


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'cpu'


def git_commit() -> str:
    try:
        out = subprocess.run(['git', 'describe', '--always', '--dirty'],
                             cwd=REPO, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or 'unknown'
    except (OSError, subprocess.SubprocessError):
        return 'unknown'


def config_diff(a, b, prefix: str = '') -> list:
    """Dotted keys whose values differ between two config dicts."""
    keys = []
    for k in sorted(set(a) | set(b), key=str):
        va, vb = a.get(k, '<missing>'), b.get(k, '<missing>')
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += config_diff(va, vb, f'{prefix}{k}.')
        elif va != vb and k != '_scope_':
            keys.append(f'{prefix}{k}')
    return keys


def make_job(args, cfg) -> dict:
    """Build one config's model, optim wrapper and loader, instrumented."""
    cfg, model, optim_wrapper, loader, batch_size, device = build(args, cfg)
    clock = Clock(device)
    model.data_preprocessor.forward = timed(
        clock, 'preprocess', model.data_preprocessor.forward)
    optim_wrapper.backward = timed(clock, 'backward', optim_wrapper.backward)
    optim_wrapper.step = timed(clock, 'optimizer', optim_wrapper.step)
    optim_wrapper.zero_grad = timed(clock, 'optimizer',
                                    optim_wrapper.zero_grad)
    names = args.time_module
    if names is None:
        names = ['box_source'] if isinstance(
            getattr(model, 'box_source', None), torch.nn.Module) else []
    elif names == ['none']:
        names = []
    for name in names:
        time_module(model, clock, name)
    it = iter(loader)
    captured = {}

    def next_batch():
        batch = next(it)
        if 'raw' not in captured:  # the preprocessor moves flipped boxes
            captured['raw'] = copy.deepcopy(batch)
        return batch

    return dict(cfg=cfg, model=model, optim_wrapper=optim_wrapper,
                loader=loader, batch_size=batch_size, device=device,
                clock=clock, next_batch=next_batch, captured=captured,
                modules=names)


def summarise_job(job, per_step) -> dict:
    res = summarise(per_step, job['batch_size'])
    total = sum(w['step'] for w, _ in per_step)
    for name in job['modules']:
        res[f'{name}_ms'] = 1e3 * statistics.median(
            w.get(name, 0.0) for w, _ in per_step)
        res[f'{name}_share'] = sum(w.get(name, 0.0)
                                   for w, _ in per_step) / total
    return res


def main(argv=None) -> dict:
    from mmengine.optim import AmpOptimWrapper
    args = parse_args(argv)
    if args.compare and args.ceiling:
        raise ValueError('--compare and --ceiling: run them separately')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options, args)
    stock_cfg = None
    if args.compare:  # the same images, pipeline and batch as CONFIG
        stock_cfg = load_config(args.compare, None, args)
        stock_cfg.train_dataloader = copy.deepcopy(cfg.train_dataloader)
        if args.stock_options:
            stock_cfg.merge_from_dict(args.stock_options)
    jobs = [make_job(args, cfg)]
    if stock_cfg is not None:
        jobs.append(make_job(args, stock_cfg))
    job = jobs[0]
    model, optim_wrapper, device = (job['model'], job['optim_wrapper'],
                                    job['device'])
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    result = dict(config=osp.relpath(osp.abspath(args.config), REPO)
                  if osp.exists(args.config) else args.config,
                  device=str(device), batch_size=job['batch_size'],
                  steps=args.steps, warmup=args.warmup,
                  amp=isinstance(optim_wrapper, AmpOptimWrapper),
                  channels_last=args.channels_last)
    per_job = run_interleaved(
        [(j['model'], j['optim_wrapper'], j['next_batch'], j['clock'])
         for j in jobs], args.steps, args.warmup)
    result.update(summarise_job(job, per_job[0]))
    result['peak_mem_mib'] = peak_memory_mib(device)
    result['peak_mem_kind'] = ('cuda max_memory_allocated' if
                               device.type == 'cuda' else 'process max RSS')
    if stock_cfg is not None:
        result['stock'] = dict(config=args.compare,
                               **summarise_job(jobs[1], per_job[1]))
        result['overhead_ratio'] = (result['step_ms'] /
                                    result['stock']['step_ms'])
        # on shared CPUs the CPU time is the steadier measure
        result['cpu_overhead_ratio'] = (result['cpu_ms_per_img'] /
                                        result['stock']['cpu_ms_per_img'])
        result['model_diff'] = [  # what else than overhead the ratio holds
            f'{part}.{k}' for part in ('model', 'optim_wrapper')
            for k in config_diff(cfg[part].to_dict(),
                                 stock_cfg[part].to_dict())]
    if args.ceiling:
        clock = job['clock']
        with torch.no_grad():
            fixed = synthetic(model.data_preprocessor(job['captured']['raw'],
                                                      True),
                              device, args.seed)
        model.data_preprocessor.forward = timed(clock, 'preprocess',
                                                lambda data, training: data)
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        ceil = summarise(run_steps(model, optim_wrapper, lambda: fixed,
                                   clock, args.steps, args.warmup),
                         job['batch_size'])
        result['ceiling_img_per_s'] = ceil['img_per_s']
        result['ceiling_step_ms'] = ceil['step_ms']
        result['ceiling_peak_mem_mib'] = peak_memory_mib(device)
        result['ratio'] = result['img_per_s'] / ceil['img_per_s']
    result.update(
        workers=job['loader'].num_workers, threads=torch.get_num_threads(),
        gpu_augment=sorted(getattr(model.data_preprocessor, 'gpu_augment',
                                   {}) or []),
        machine=f'{os.cpu_count()} CPUs, {cpu_name()}' +
        (f', {torch.cuda.get_device_name(device)}'
         if device.type == 'cuda' else ''),
        torch=torch.__version__, commit=git_commit(),
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'))

    def rounded(d):
        return {k: rounded(v) if isinstance(v, dict) else
                round(v, 4) if isinstance(v, float) else v
                for k, v in d.items()}
    line = json.dumps(rounded(result))
    print(line)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(line + '\n')
    print_table(result)
    return result


def print_table(result: dict) -> None:
    """The figures as a Markdown table on stderr (a stock column with
    ``--compare``)."""
    stock = result.get('stock', {})
    keys = [k for k, v in result.items() if isinstance(v, float)]
    table = ['| metric | value |' + (' stock |' if stock else ''),
             '|---|---|' + ('---|' if stock else '')]
    for key in keys:
        cell = f' {stock[key]:.3f} |' if key in stock else ''
        table.append(f'| {key} | {result[key]:.3f} |' + (
            cell or ' |' if stock else ''))
    print('\n'.join(table), file=sys.stderr)


if __name__ == '__main__':
    main()
