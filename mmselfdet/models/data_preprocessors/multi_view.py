# Copyright (c) mmselfdet contributors. All rights reserved.
"""Batching of named views: ``{view: [img, ...]}`` (or ``{view: (N,3,H,W)
uint8}`` from :func:`~mmselfdet.datasets.collate.multi_view_collate`) ->
``{view: (N,3,H,W)}``,
optionally with the views' pixel augmentations run on the batch (issue 18).
"""
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures.bbox import BaseBoxes
from mmengine.dist import get_rank
from mmengine.model import ImgDataPreprocessor
from mmengine.structures import BaseDataElement

from mmselfdet.registry import MODELS

from ..utils.batched_augment import BatchedViewAugment
from ..utils.photometric import without_autocast
from .device_move import move_data_elements

#: state-dict key (below the preprocessor's prefix) of (seed, step)
STATE_KEY = 'augment_state'



@MODELS.register_module()
class MultiViewDataPreprocessor(DetDataPreprocessor):
    """mmdet's :class:`DetDataPreprocessor` applied to every view.

    The pipeline's ``MultiBranch`` packs one sample as
    ``{'inputs': {view: Tensor}, 'data_samples': {view: DetDataSample}}``;
    after collation each view is normalised, padded and stacked on its own
    (a view that ``multi_view_collate`` stacked already is taken as it is:
    the same output), and the views are returned under the same names.
    Data samples keep their ``homography_matrix`` and boxes, so a box can
    be mapped from one view into another. A plain (single-view) batch is passed to
    :class:`DetDataPreprocessor` unchanged, so the same model can run in
    ``tensor`` mode on ordinary detection batches.

    Unlike mmdet's ``MultiBranchDataPreprocessor`` this also works with
    ``training=False`` and rejects views that are missing in some samples
    with an error naming them.

    **Augmentation on the batch** (``gpu_augment``): for each named view, a
    list of the CPU pipeline's pixel-op dicts (``ColorJitter``,
    ``RandomGrayscale``, ``GaussianBlur``, ``Solarize``, ``RandomFlip``)
    run here as batched per-sample-random tensor ops
    (:mod:`mmselfdet.models.utils.batched_augment`) on the device the
    model is on, before normalisation, in training only; the pipeline then
    only decodes, crops and packs that view (every image of the view must
    have the same size). A flip moves the sample's boxes and composes its
    ``homography_matrix``. Randomness: before each training batch a CPU
    ``torch.Generator`` is seeded from ``(seed, rank, step)`` and ``step``
    is counted up, so draws are independent across ranks and steps and a
    resumed run continues with the same draws: ``(seed, step)`` is the
    int64 tensor ``data_preprocessor.augment_state`` of the state dict
    (only when ``gpu_augment`` is set), i.e. in every checkpoint.
    ``augment_seed=None`` takes ``torch.initial_seed()`` when the
    preprocessor is built (the runner's ``randomness.seed``).

    Args:
        gpu_augment (dict[str, list[dict] | dict], optional): View name ->
            op dicts, or ``dict(ops=[...], patch_grid=G)`` for jigsaw tiles
            (each patch augmented on its own). None (default): the CPU
            pipeline augments.
        augment_seed (int, optional): Base seed of the draws.
        **kwargs: :class:`DetDataPreprocessor`'s arguments; here
            ``non_blocking`` defaults to True (the paper configs' loaders
            pin their batches).
    """

    def __init__(self,
                 *args,
                 gpu_augment: Optional[Dict[str, List[dict]]] = None,
                 augment_seed: Optional[int] = None,
                 **kwargs) -> None:
        # copies to the device need not block the host (mmengine's default
        # does): from pinned batches they overlap, from pageable memory a
        # copy is synchronous either way
        kwargs.setdefault('non_blocking', True)
        super().__init__(*args, **kwargs)
        self.gpu_augment: Dict[str, BatchedViewAugment] = {}
        if gpu_augment is not None:
            if not isinstance(gpu_augment, dict):
                raise TypeError('MultiViewDataPreprocessor.gpu_augment must '
                                'be a dict view -> list of op dicts, got '
                                f'{type(gpu_augment).__name__}')
            for view, ops in gpu_augment.items():
                self.gpu_augment[view] = BatchedViewAugment(
                    ops if isinstance(ops, dict) else list(ops), name=view,
                    input_bgr=self._channel_conversion)
        self.augment_seed = int(torch.initial_seed() if augment_seed is None
                                else augment_seed) % 2**63
        self.augment_step = 0

    # --- seeded, resumable randomness ------------------------------------
    def augment_generator(self, step: Optional[int] = None
                          ) -> torch.Generator:
        """The CPU generator of one step's draws, seeded from
        ``(augment_seed, rank, step)``."""
        step = self.augment_step if step is None else step
        words = np.random.SeedSequence(
            [self.augment_seed % 2**63, get_rank(), step]).generate_state(
                2, np.uint64)
        return torch.Generator().manual_seed(int(words[0] % 2**63))

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.gpu_augment:  # models without it keep their old keys
            destination[prefix + STATE_KEY] = torch.tensor(
                [self.augment_seed, self.augment_step], dtype=torch.int64)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        key = prefix + STATE_KEY
        if key in unexpected_keys:
            unexpected_keys.remove(key)
        if key in state_dict and self.gpu_augment:
            self.augment_seed, self.augment_step = (
                int(v) for v in state_dict[key].tolist())
        elif self.gpu_augment and strict:
            missing_keys.append(key)

    def cast_data(self, data):
        """mmengine's ``cast_data``, except that data samples are moved to
        the device **in place**, a list's CPU tensors in one copy
        (:mod:`.device_move`): ``BaseDataElement.to`` rebuilds every
        element, deep-copies its metainfo and copies each tensor on its
        own, the largest host cost of a multi-view batch
        (``docs/benchmarks.md``, "the preprocessor's host cost")."""
        if isinstance(data, BaseDataElement):
            return move_data_elements([data], self.device,
                                      self._non_blocking)[0]
        if isinstance(data, list) and data and all(
                isinstance(d, BaseDataElement) for d in data):
            return move_data_elements(data, self.device, self._non_blocking)
        return super().cast_data(data)

    def _augment_view(self, view: str, imgs: Union[list, torch.Tensor],
                      samples: Optional[list],
                      generator: torch.Generator) -> torch.Tensor:
        if torch.is_tensor(imgs):  # stacked by multi_view_collate
            batch = imgs
        else:
            shapes = {tuple(img.shape) for img in imgs}
            if len(shapes) != 1:
                raise ValueError(
                    f'MultiViewDataPreprocessor.gpu_augment["{view}"]: the '
                    f'view\'s images differ in size {sorted(shapes)}; '
                    'batched augmentation needs fixed-size crops (the view '
                    'pipeline must resize every crop to one size)')
            batch = torch.stack(list(imgs))
        batch = batch.to(self.device, non_blocking=True)
        return self.gpu_augment[view](batch, samples, generator,
                                      to_rgb=True)  # (N, 3, H, W) RGB

    def _view_forward(self, data: dict, training: bool) -> dict:
        """mmdet's ``DetDataPreprocessor.forward`` for one view, its
        per-sample tail done field by field: ``set_metainfo`` deep-copies
        a dict per sample and ``InstanceData.__setattr__`` checks every
        field's length, a host cost paid for each image of each view
        (``docs/benchmarks.md``, "the preprocessor's host cost"). The
        same result (``tests/test_models/test_preprocessor_cast.py``);
        mmdet's own method where it would do more (mask / segmentation
        padding, batch augments)."""
        if self.pad_mask or self.pad_seg or self.batch_augments is not None:
            return super().forward(data, training)
        pad_shapes = self._get_pad_shape(data)
        data = ImgDataPreprocessor.forward(self, data, training)
        inputs, samples = data['inputs'], data['data_samples']
        if samples is not None:
            shape = tuple(inputs[0].size()[-2:])
            for sample, pad_shape in zip(samples, pad_shapes):
                sample.set_field(shape, 'batch_input_shape',
                                 field_type='metainfo')
                sample.set_field(pad_shape, 'pad_shape',
                                 field_type='metainfo')
                if not self.boxtype2tensor:
                    continue
                for key in ('gt_instances', 'pred_instances',
                            'ignored_instances'):
                    inst = sample.get(key)
                    boxes = None if inst is None else inst.get('bboxes')
                    if isinstance(boxes, BaseBoxes):  # same length
                        object.__setattr__(inst, 'bboxes', boxes.tensor)
        return {'inputs': inputs, 'data_samples': samples}

    def forward(self, data: dict, training: bool = False) -> dict:
        # mmengine runs the preprocessor inside the optim wrapper's autocast
        # (AMP configs): the batched ops would then blur in float16 and
        # round differently from their CPU twins; the output is float32
        # either way
        with without_autocast(self.device):
            return self._forward(data, training)

    def _forward(self, data: dict, training: bool) -> dict:
        inputs = data['inputs']
        if not isinstance(inputs, dict):
            return super().forward(data, training)
        samples: Optional[Dict[str, list]] = data.get('data_samples')
        generator = None
        if training and self.gpu_augment:
            generator = self.augment_generator()
            self.augment_step += 1
        out_inputs, out_samples = {}, {}
        for view, imgs in inputs.items():
            # a view is a list of (C, H, W) images, or one (N, C, H, W)
            # tensor (multi_view_collate stacks fixed-size views)
            if not torch.is_tensor(imgs) and any(img is None for img in imgs):
                raise ValueError(
                    f'view "{view}" is missing in some samples of the batch: '
                    'every sample of a pretraining pipeline must produce every '
                    'view (check the MultiBranch branches of the pipeline)')
            view_samples = None if samples is None else samples.get(view)
            augmented = generator is not None and view in self.gpu_augment
            if augmented:
                imgs = self._augment_view(view, imgs, view_samples,
                                          generator)  # (N, 3, H, W)
            view_data = {'inputs': imgs}
            if view_samples is not None:
                view_data['data_samples'] = view_samples
            if augmented:  # already RGB
                convert, self._channel_conversion = \
                    self._channel_conversion, False
                try:
                    res = self._view_forward(view_data, training)
                finally:
                    self._channel_conversion = convert
            else:
                res = self._view_forward(view_data, training)
            out_inputs[view] = res['inputs']  # (N, 3, H, W)
            out_samples[view] = res.get('data_samples')
        return {'inputs': out_inputs, 'data_samples': out_samples}
