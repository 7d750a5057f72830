# Runtime + step-counted schedule of the toy configs (one CPU process,
# about 2 minutes). Budgets count steps (docs/methods.md §6b).
_base_ = ['./default_runtime.py']
max_iters = 150
# stops (or with policy='skip' skips and counts) a step with a non-finite
# loss or gradient (docs/reliability.md)
optim_wrapper = dict(
    type='NonFiniteGuardOptimWrapper',
    optimizer=dict(type='SGD', lr=0.06, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(enable=False, base_batch_size=32)  # every toy runs 1 x 32
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(window_size=20, by_epoch=False)
