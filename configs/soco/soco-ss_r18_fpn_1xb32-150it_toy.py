# SoCo on the toy set with offline selective-search proposals (the baseline
# of the end-to-end variant): the toy SoCo model, views and schedule, boxes
# from data/toy/proposals/ss_fast_unlabeled.json, filtered as SoCo does but
# with the size filter scaled to the 128-px toy images (min_size 8 instead
# of 32; the aspect filter as SoCo; the area filter off, toy objects are
# small). The search runs at the toy images' own 128 px (--max-side 128;
# the default 500 would upscale them 4x and cost 15x more). Make the file
# first (a few minutes on 2 cores; the quickstart's `soco-ss` method does it):
#   python tools/generate_proposals.py data/toy/unlabeled \
#       --ann-file data/toy/annotations/unlabeled.json \
#       --out data/toy/proposals/ss_fast_unlabeled.json --mode fast \
#       --max-side 128 --workers 2
_base_ = ['./soco-gtboxes_r18_fpn_1xb32-150it_toy.py']
view_pipeline = _base_.color_augs + _base_.flip_pack
# SoCo's cutout in box (p 0.5, 10-30 % of the box area) on V2 / V3 only
cutout_pipeline = _base_.color_augs + [
    dict(type='RandomCutoutInBoxes', prob=0.5, ratio=(0.1, 0.3))
] + _base_.flip_pack
train_dataloader = dict(dataset=dict(
    keep_boxes=False,
    proposal_file='proposals/ss_fast_unlabeled.json',
    proposal_filter=dict(min_size=8, aspect_range=(1 / 3, 3),
                         area_ratio_range=None),
    missing_proposals='whole_image',
    pipeline=[
        _base_.load_image,
        dict(type='LoadProposals'),
        dict(type='SoCoViews', num_boxes=4, box_source='proposals',
             v1_size=64, v2_size=64, v3_size=32, crop_scale=(0.5, 1.0)),
        dict(type='RandomBoxJitter', mode='relative', prob=0.5,
             jitter_ratio=0.1, views=['v1']),
        dict(type='PackViews', pipelines=dict(
            v1=view_pipeline, v2=cutout_pipeline, v3=cutout_pipeline)),
    ]))
