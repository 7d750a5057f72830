# Copyright (c) mmselfdet contributors. All rights reserved.
"""Self-training rounds inside one training run (DETR pretraining, stage D)."""
import copy
import gc
import json
import os.path as osp
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import barrier, collect_results, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmselfdet.registry import HOOKS
from .coco import read_coco_images
from .rounds import (SELECTION_MODES, round_file, select_predictions,
                     write_round)

__all__ = ['SelfTrainingHook']


@HOOKS.register_module()
class SelfTrainingHook(Hook):
    """Relabel the training set with the detector every ``interval``.

    Round 0 trains on the config's ``ann_file``. At the end of every
    ``interval`` iterations (or epochs with ``by_epoch=True``) until
    ``num_rounds`` rounds are reached, the hook runs the current detector
    over ``label_dataloader`` (the training images with a test pipeline),
    keeps the best ``max_per_img`` predictions of every image by their
    maximum class score, or with ``selection='threshold'`` those scoring at
    least ``score_thr``
    (:func:`~mmselfdet.simdetr.rounds.select_predictions`; an image
    left without any keeps its previous boxes, counted in the log),
    optionally re-clusters the backbone features of every box of the round
    (kept predictions and kept previous boxes together, so all ids come
    from one k-means) into the same number of classes, writes
    ``work_dir/self_training/round_NN.json``, reloads the training dataset
    from it, and training continues. The round index and its json
    are stored in ``checkpoint['meta']['self_training']``, so ``--resume``
    continues the right round on the right labels.

    The training dataset must be a COCO-style dataset whose length does not
    depend on its boxes (``filter_cfg=dict(filter_empty_gt=False)``), and
    its dataloader must not keep persistent workers (they would keep the
    old labels).

    Args:
        label_dataloader (dict): Dataloader config over the training images
            with a test pipeline (``img_id`` and ``scale_factor`` in the
            meta), e.g. ``dict(batch_size=8, dataset=dict(pipeline=
            test_pipeline))``: a dataset without ``ann_file`` gets the
            training set's type, classes, round-0 json and image prefix
            (``data_root=''``); the sampler defaults to an unshuffled
            ``DefaultSampler``.
        interval (int): Iterations (epochs with ``by_epoch``) per round.
        num_rounds (int): Rounds in total, round 0 included. Defaults to 2.
        by_epoch (bool): Count ``interval`` in epochs. Defaults to False.
        selection (str): 'topk' (default): the best ``max_per_img``
            queries of an image by maximum class score, no threshold
            (sigmoid scores over 256 classes rarely pass 0.3); the label
            model's ``test_cfg.max_per_img`` (query, class) pairs must hold
            at least that many distinct queries (mmdet's 100 do).
            'threshold': keep scores >= ``score_thr`` [the rule before
            session 7].
        score_thr (float): Threshold of ``selection='threshold'``.
            Defaults to 0.3.
        nms_iou (float, optional): Class-agnostic NMS IoU. Defaults to 0.5.
        max_per_img (int, optional): Boxes kept per image. Defaults to 30.
        class_agnostic_nms (bool): NMS across classes. Defaults to True.
        recluster (bool): Re-cluster the features of all the round's boxes
            (RoIAlign on the backbone's last stage; an image without a kept
            prediction contributes its previous boxes) into fresh class ids.
            Defaults to False (the detector's own class ids are kept).
        seed (int): Seed of the re-clustering. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self,
                 label_dataloader: dict,
                 interval: int,
                 num_rounds: int = 2,
                 by_epoch: bool = False,
                 selection: str = 'topk',
                 score_thr: float = 0.3,
                 nms_iou: Optional[float] = 0.5,
                 max_per_img: Optional[int] = 30,
                 class_agnostic_nms: bool = True,
                 recluster: bool = False,
                 seed: int = 0) -> None:
        if interval < 1 or num_rounds < 1:
            raise ValueError('SelfTrainingHook: interval and num_rounds must '
                             f'be >= 1, got {interval}, {num_rounds}')
        self.label_dataloader = label_dataloader
        self.interval = interval
        self.num_rounds = num_rounds
        self.by_epoch = by_epoch
        if selection not in SELECTION_MODES:
            raise ValueError(f'SelfTrainingHook: selection must be one of '
                             f'{SELECTION_MODES}, got {selection!r}')
        self.select_cfg = dict(mode=selection, score_thr=score_thr,
                               nms_iou=nms_iou,
                               max_per_img=max_per_img,
                               class_agnostic=class_agnostic_nms)
        self.recluster = recluster
        self.seed = seed
        self.round = 0
        self.ann_file: Optional[str] = None

    # ------------------------------------------------------------- runner
    def before_train(self, runner) -> None:
        ds = runner.train_dataloader.dataset
        assert hasattr(ds, 'ann_file') and hasattr(ds, 'full_init'), (
            'SelfTrainingHook: the training dataset must be a COCO-style '
            f'dataset with an ann_file, got {type(ds).__name__}')
        loader = runner.train_dataloader
        assert not (loader.num_workers > 0 and loader.persistent_workers), (
            'SelfTrainingHook: set train_dataloader.persistent_workers=False '
            '(persistent workers would keep the old round\'s labels)')
        if self.ann_file is None:
            self.ann_file = ds.ann_file

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self.by_epoch and (runner.iter + 1) % self.interval == 0 \
                and runner.iter + 1 < runner.max_iters:
            self._next_round(runner)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and (runner.epoch + 1) % self.interval == 0 \
                and runner.epoch + 1 < runner.max_epochs:
            self._next_round(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['self_training'] = dict(
            round=self.round, ann_file=self.ann_file)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('self_training')
        # only a resumed run continues its round; load_from starts afresh
        if state is None or not getattr(runner, '_resume', False):
            return
        self.round = int(state['round'])
        if self.round > 0:
            if not osp.isfile(state['ann_file']):
                raise FileNotFoundError(
                    f'SelfTrainingHook: the checkpoint resumes round '
                    f'{self.round} on "{state["ann_file"]}", which does not '
                    'exist')
            self._reload(runner, state['ann_file'])
        print_log(f'SelfTrainingHook: resumed round {self.round} '
                  f'({state["ann_file"]})', logger='current')

    # -------------------------------------------------------------- rounds
    def _next_round(self, runner) -> None:
        if self.round + 1 >= self.num_rounds:
            return
        nxt = self.round + 1
        path = round_file(runner.work_dir, nxt)
        prev = self._previous_labels()
        preds, feats = self._predict(runner, prev)
        if is_main_process():
            ds = runner.train_dataloader.dataset
            images, _ = read_coco_images(self.ann_file)
            kept = self._keep_previous(preds, prev)
            counts = write_round(
                path, images, preds, ds.metainfo['classes'], nxt,
                feats=feats if self.recluster else None,
                recluster_seed=self.seed + nxt,
                info=dict(source='self_training', previous=self.ann_file,
                          iter=runner.iter + 1, **self.select_cfg))
            print_log(f'SelfTrainingHook: round {nxt} labels -> {path}: '
                      f'{counts}; {kept} image(s) without a confident '
                      'prediction keep their previous labels',
                      logger='current')
        barrier()
        self._reload(runner, path)
        self.round = nxt

    def _reload(self, runner, path: str) -> None:
        """Point the training dataset at ``path`` and restart its loader."""
        ds = runner.train_dataloader.dataset
        n = len(ds)
        ds.ann_file = path
        ds._fully_initialized = False
        ds.full_init()
        if len(ds) != n:
            raise RuntimeError(
                f'SelfTrainingHook: the dataset had {n} images and has '
                f'{len(ds)} with "{path}"; use filter_cfg=dict('
                'filter_empty_gt=False) so rounds keep every image')
        self.ann_file = path
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):  # IterBasedTrainLoop
            # a fresh iterator (fresh workers see the new labels)
            it_type = type(loop.dataloader_iterator)
            loop.dataloader_iterator = None
            gc.collect()  # close the old generators now, not at random later
            # mmengine's InfiniteSampler iterates one generator made in its
            # __init__; closing the old iterator closed it: make it anew
            dl = loop.dataloader
            for sampler in (getattr(dl, 'sampler', None),
                            getattr(dl.batch_sampler, 'sampler', None)):
                if hasattr(sampler, '_indices_of_rank'):
                    sampler.indices = sampler._indices_of_rank()
            # mmdet's AspectRatioBatchSampler keeps its buckets on the
            # instance; one closed at a `yield` stays full, and the new
            # iteration would then never reach `len == batch_size`
            for bucket in getattr(dl.batch_sampler, '_aspect_ratio_buckets',
                                  []):
                del bucket[:]
            loop.dataloader_iterator = it_type(dl)

    def _previous_labels(self) -> Dict[int, tuple]:
        """The current round's labels: image id -> (x1y1x2y2 boxes in
        original pixels, class indices, scores), in the file's order."""
        with open(self.ann_file) as f:
            prev = json.load(f)
        cat_index = {c['id']: k for k, c in enumerate(prev['categories'])}
        old: Dict[int, list] = {}
        for a in prev['annotations']:
            old.setdefault(a['image_id'], []).append(a)
        out = {}
        for im in prev['images']:
            anns = old.get(im['id'], [])
            b = np.asarray([a['bbox'] for a in anns],
                           np.float64).reshape(-1, 4)
            b[:, 2:] += b[:, :2]
            out[im['id']] = (b, np.asarray(
                [cat_index[a['category_id']] for a in anns], np.int64),
                np.asarray([a.get('score', 1.0) for a in anns]))
        return out

    @staticmethod
    def _keep_previous(preds: Dict[int, tuple],
                       prev: Dict[int, tuple]) -> int:
        """Images without a kept prediction keep their current boxes
        [ours] (an empty image would teach 'no object'); returns their
        count. With ``recluster``, :meth:`_predict` pooled the features of
        exactly these boxes, so they are re-clustered with the rest."""
        n = 0
        for img_id, labels in prev.items():
            p = preds.get(img_id)
            if p is not None and len(p[0]):
                continue
            preds[img_id] = labels
            n += 1
        return n

    @torch.no_grad()
    def _predict(self, runner, prev: Dict[int, tuple]):
        """Kept predictions per image id, and with ``recluster`` the
        features of the boxes the round will hold: the kept predictions, or
        the previous boxes ``prev`` of an image without any."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if isinstance(self.label_dataloader, dict):
            cfg = copy.deepcopy(self.label_dataloader)
            cfg.setdefault('sampler', dict(type='DefaultSampler',
                                           shuffle=False))
            ds_cfg = cfg['dataset']
            if not ds_cfg.get('ann_file'):  # the training images
                train_ds = runner.train_dataloader.dataset
                ds_cfg.setdefault('type', type(train_ds).__name__)
                ds_cfg.setdefault('metainfo', dict(
                    classes=train_ds.metainfo['classes']))
                ds_cfg.update(ann_file=self.ann_file, data_root='',
                              data_prefix=dict(train_ds.data_prefix))
            self.label_dataloader = runner.build_dataloader(
                cfg, seed=runner.seed)
        loader = self.label_dataloader
        was_training = model.training
        model.eval()
        part = []
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs, samples = data['inputs'], data['data_samples']
            results = model.predict(inputs, samples, rescale=False)
            fmap = model.backbone(inputs)[-1] if self.recluster else None
            for i, res in enumerate(results):
                p = res.pred_instances
                b, s, lab = select_predictions(p.bboxes, p.scores, p.labels,
                                               **self.select_cfg)
                sf = b.new_tensor(res.metainfo['scale_factor']).repeat(2)
                f = None
                if fmap is not None:
                    # the boxes the round keeps, in input pixels
                    fb = b if len(b) else b.new_tensor(
                        prev[int(res.metainfo['img_id'])][0]) * sf
                    f = self._pool(fmap[i:i + 1], fb, inputs.shape[-1])
                part.append((res.metainfo['img_id'],
                             (b / sf).cpu().numpy(), lab.cpu().numpy(),
                             s.cpu().numpy(), f))
        model.train(was_training)
        allp = collect_results(part, len(loader.dataset), device='cpu')
        preds: Dict[int, tuple] = {}
        feats: Dict[int, np.ndarray] = {}
        for img_id, b, lab, s, f in allp or []:
            preds[int(img_id)] = (b, lab, s)
            if f is not None:
                feats[int(img_id)] = f
        return preds, feats

    @staticmethod
    def _pool(fmap: torch.Tensor, boxes: torch.Tensor,
              input_w: int) -> np.ndarray:
        """RoIAlign-average of (1, C, h, w) ``fmap`` at input-pixel boxes."""
        from mmcv.ops import roi_align
        if len(boxes) == 0:
            return np.zeros((0, fmap.shape[1]), np.float32)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], 1)
        out = roi_align(fmap, rois.to(fmap), (2, 2),
                        fmap.shape[-1] / input_w, 2, 'avg', True)
        return out.mean((2, 3)).float().cpu().numpy()  # (M, C)
