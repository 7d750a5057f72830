# End-to-end SoCo on ImageNet-1k (docs/methods.md §5, our reading): SoCo's model,
# views, schedule and optimizer (100 epochs, LARS, AMP), but no proposal
# file and no selective search: every step the target network's C5 heat map
# on V1 gives K=4 boxes (HeatMapProposer, center-suppressed sampling, SoCo's
# shape filters in V1 pixels), mapped into V2 / V3 by the views' geometry,
# plus 2 extra 96-px crops of each box ("multiple cropping").
# Every switch is documented in configs/soco/README.md.
_base_ = ['./soco_r50_fpn_8xb32-lars-100e_in1k.py']
# SoCo's V2 / V3 augmentation; its cutout in box runs in the model
# (`cutout` below): the views carry no box, the boxes are found on the
# device after this pipeline
v2_pipeline = _base_.v2_augs + _base_.flip_pack
model = dict(
    proposer=dict(type='HeatMapProposer', num_boxes=4, reduce='mean',
                  map_size=56, thresholds=(0.3, 0.5, 0.7),
                  threshold_mode='absolute', num_draws=12, suppress='region',
                  min_size=16, aspect_range=(1 / 3, 3),
                  area_ratio_range=(0.3, 0.8)),
    heat_stage=-1,
    restrict_to_views=True,
    min_visible=0.5,
    jitter=dict(prob=0.5, ratio=0.1),
    # extra crops cut from the un-augmented raw view (the image at V1's 224
    # px), each with its own SoCo V2 photometric augmentation
    extra_crops=dict(num_crops=2, size=96, scale=(1.0, 1.5), weight=1.0,
                     source='raw', raw_view='raw'),
    # SoCo's V2 / V3 cutout in box (p 0.5, 10-30 % of the box area), on the
    # device at the heat-map boxes of V2 / V3, before either network
    cutout=dict(prob=0.5, ratio=(0.1, 0.3)))
train_dataloader = dict(dataset=dict(
    proposal_file=None,
    proposal_filter=None,
    pipeline=[
        _base_.load_image,
        dict(type='SoCoViews', box_source='none', v1_size=224, v2_size=224,
             v3_size=112, crop_scale=(0.5, 1.0), raw_view='raw'),
        dict(type='PackViews', pipelines=dict(
            v1=_base_.v1_pipeline, v2=v2_pipeline, v3=v2_pipeline,
            raw=[dict(type='PackViewInputs')])),
    ]))
