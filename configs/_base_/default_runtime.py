# Runtime shared by every mmselfdet pretraining config.
default_scope = 'mmdet'
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic checkpoint + last_checkpoint writes, old ones pruned after,
    # every rank's RNG states saved and restored on resume
    checkpoint=dict(type='SafeCheckpointHook', interval=10, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # reliability (docs/reliability.md); the non-finite loss / gradient
    # guard is the optimizer wrapper: optim_wrapper.type=
    # 'NonFiniteGuardOptimWrapper' (toy_runtime.py, schedules/*.py)
    bad_images=dict(type='BadImageSummaryHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # a rank that hangs or died ends the job after `timeout` seconds
    dist_cfg=dict(backend='nccl', timeout=1800),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(window_size=10, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
