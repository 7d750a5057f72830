# Copyright (c) mmselfdet contributors. All rights reserved.
"""One self-training round: the current detector relabels the training set.

:class:`SelfTrainingRounds` holds the settings and the state (round index,
current json) of stage D and writes the next round's json; the training
loops of :mod:`mmselfdet.simdetr.self_training` decide when, and rebuild
their dataloader on the file it returns.
"""
import copy
import json
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import barrier, collect_results, is_main_process
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from .coco import read_coco_images
from .rounds import (SELECTION_MODES, round_file, select_predictions,
                     write_round)

__all__ = ['SelfTrainingRounds']


class SelfTrainingRounds:
    """Settings and state of the self-training rounds (SimDETR stage D).

    Round 0 trains on the config's ``ann_file``. :meth:`next_round` runs
    the current detector over ``label_dataloader`` (the training images
    with a test pipeline), keeps per image the predictions of
    :func:`~mmselfdet.simdetr.rounds.select_predictions` (an image left
    without any keeps its previous boxes, counted in the log), optionally
    re-clusters the backbone features of every box of the round (kept
    predictions and kept previous boxes together, so all ids come from one
    k-means) into the same number of classes, and writes
    ``work_dir/self_training/round_NN.json``.

    Args:
        label_dataloader (dict): Dataloader config over the training images
            with a test pipeline (``img_id`` and ``scale_factor`` in the
            meta), e.g. ``dict(batch_size=8, dataset=dict(pipeline=
            test_pipeline))``: a dataset without ``ann_file`` gets the
            training set's type, classes, current json and image prefix
            (``data_root=''``); the sampler defaults to an unshuffled
            ``DefaultSampler``. Built once, on first use.
        interval (int): Iterations (epochs for an epoch loop) per round.
        num_rounds (int): Rounds in total, round 0 included. Defaults to 2.
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

    def __init__(self,
                 label_dataloader: dict,
                 interval: int,
                 num_rounds: int = 2,
                 selection: str = 'topk',
                 score_thr: float = 0.3,
                 nms_iou: Optional[float] = 0.5,
                 max_per_img: Optional[int] = 30,
                 class_agnostic_nms: bool = True,
                 recluster: bool = False,
                 seed: int = 0) -> None:
        if interval < 1 or num_rounds < 1:
            raise ValueError('self-training: interval and num_rounds must '
                             f'be >= 1, got {interval}, {num_rounds}')
        if selection not in SELECTION_MODES:
            raise ValueError(f'self-training: selection must be one of '
                             f'{SELECTION_MODES}, got {selection!r}')
        self.label_dataloader = label_dataloader
        self.interval = interval
        self.num_rounds = num_rounds
        self.select_cfg = dict(mode=selection, score_thr=score_thr,
                               nms_iou=nms_iou, max_per_img=max_per_img,
                               class_agnostic=class_agnostic_nms)
        self.recluster = recluster
        self.seed = seed
        self.round = 0
        self.ann_file: Optional[str] = None

    def target_round(self, done: int) -> int:
        """The round that trains after ``done`` iterations (epochs)."""
        return min(self.num_rounds - 1, done // self.interval)

    def state_dict(self) -> dict:
        """What a checkpoint stores: ``round`` and ``ann_file``."""
        return dict(round=self.round, ann_file=self.ann_file)

    def next_round(self, runner, train_dataset, step: int) -> str:
        """Write round ``round + 1``'s json from the current detector;
        returns its path (every rank, after a barrier)."""
        nxt = self.round + 1
        path = round_file(runner.work_dir, nxt)
        prev = self._previous_labels()
        preds, feats = self._predict(runner, train_dataset, prev)
        if is_main_process():
            images, _ = read_coco_images(self.ann_file)
            kept = self._keep_previous(preds, prev)
            counts = write_round(
                path, images, preds, train_dataset.metainfo['classes'], nxt,
                feats=feats if self.recluster else None,
                recluster_seed=self.seed + nxt,
                info=dict(source='self_training', previous=self.ann_file,
                          iter=step, **self.select_cfg))
            print_log(f'self-training: round {nxt} labels -> {path}: '
                      f'{counts}; {kept} image(s) without a kept '
                      'prediction keep their previous labels',
                      logger='current')
        barrier()
        self.round, self.ann_file = nxt, path
        return path

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

    def _label_loader(self, runner, train_ds):
        """The label dataloader, built from its config on first use."""
        if isinstance(self.label_dataloader, dict):
            cfg = copy.deepcopy(self.label_dataloader)
            cfg.setdefault('sampler', dict(type='DefaultSampler',
                                           shuffle=False))
            ds_cfg = cfg['dataset']
            if not ds_cfg.get('ann_file'):  # the training images
                ds_cfg.setdefault('type', type(train_ds).__name__)
                ds_cfg.setdefault('metainfo', dict(
                    classes=train_ds.metainfo['classes']))
                ds_cfg.update(ann_file=self.ann_file, data_root='',
                              data_prefix=dict(train_ds.data_prefix))
            self.label_dataloader = runner.build_dataloader(
                cfg, seed=runner.seed)
        return self.label_dataloader

    @torch.no_grad()
    def _predict(self, runner, train_ds, prev: Dict[int, tuple]):
        """Kept predictions per image id, and with ``recluster`` the
        features of the boxes the round will hold: the kept predictions, or
        the previous boxes ``prev`` of an image without any."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        loader = self._label_loader(runner, train_ds)
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
        # contiguous: mmcv's kernel misreads a channels_last map
        out = roi_align(fmap.contiguous(), rois.to(fmap), (2, 2),
                        fmap.shape[-1] / input_w, 2, 'avg', True)
        return out.mean((2, 3)).float().cpu().numpy()  # (M, C)
