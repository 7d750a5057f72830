# InsLoc C4 variant: res5 as the RoI head on C4 (stride 16, RoIAlign 14x14),
# as in Faster R-CNN C4; one level, one queue. The original authors never
# released this config; our reading is in configs/insloc/README.md. The
# query box is jittered on C4 itself (stride 16, the jitter grid's own
# stride; the official rule of the FPN config); jitter_levels=() is the
# no-jitter switch.
_base_ = ['./insloc_r50_fpn_8xb32-coslr-200e_in1k.py']
model = dict(
    jitter_levels=(0, ),
    backbone=dict(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
                  out_indices=(2, )),
    neck=None,
    roi_pooler=dict(featmap_strides=(16, ), out_size=14),
    box_embedder=dict(
        _delete_=True,
        type='ResLayerBoxEmbedder', depth=50,
        projector=dict(type='MLPProjector', in_channels=2048,
                       hid_channels=2048, out_channels=128,
                       with_avg_pool=False)))
