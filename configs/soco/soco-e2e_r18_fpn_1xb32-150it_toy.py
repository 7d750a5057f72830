# End-to-end SoCo on the toy set (CPU): the toy SoCo model and views, but no
# box from the data: every step the target backbone's heat map on V1 gives
# K=4 boxes (HeatMapProposer), mapped into V2 / V3 by the views' geometry,
# SoCo's cutout in those V2 / V3 boxes, plus 2 extra 32-px crops of each
# box. 150 steps, SGD, like the toy SoCo.
# Toy-scale choices [ours]: heat from C2 (heat_stage=0, a 16x16 grid on the
# 64-px V1; C5 is 2x2 there), absolute thresholds and region suppression
# (best proposal recall on toy val, configs/soco/README.md); size filter in
# V1 pixels.
_base_ = ['./soco-gtboxes_r18_fpn_1xb32-150it_toy.py']
model = dict(
    proposer=dict(type='HeatMapProposer', num_boxes=4, reduce='mean',
                  map_size=32, thresholds=(0.3, 0.5, 0.7),
                  threshold_mode='absolute', num_draws=12, suppress='region',
                  min_size=4, aspect_range=(1 / 3, 3), area_ratio_range=None),
    heat_stage=0,
    restrict_to_views=True,
    min_visible=0.5,
    jitter=dict(prob=0.5, ratio=0.1),
    # extra crops cut from the un-augmented raw view, each with its own
    # SoCo V2 photometric augmentation (source='v1': from the augmented V1)
    extra_crops=dict(num_crops=2, size=32, scale=(1.0, 1.5), weight=1.0,
                     source='raw', raw_view='raw'),
    # SoCo's V2 / V3 cutout in box, on the device at the heat-map boxes
    cutout=dict(prob=0.5, ratio=(0.1, 0.3)))
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(dataset=dict(
    keep_boxes=False,
    pipeline=[
        _base_.load_image,
        dict(type='SoCoViews', box_source='none', v1_size=64, v2_size=64,
             v3_size=32, crop_scale=(0.5, 1.0), raw_view='raw'),
        dict(type='PackViews', pipelines=dict(
            v1=view_pipeline, v2=view_pipeline, v3=view_pipeline,
            raw=[dict(type='PackViewInputs')])),
    ]))
