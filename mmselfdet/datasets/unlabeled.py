# Copyright (c) mmselfdet contributors. All rights reserved.
"""Images without labels: a folder, a list file, or a COCO json."""
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmselfdet.registry import DATASETS

from .proposals import (
    FILTER_ARGS,
    FILTER_KEYS,
    filter_proposals,
    image_size_from_header,
    load_proposal_file,
    relative_image_name,
)

IMG_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
MISSING_PROPOSAL_POLICIES = ('whole_image', 'error', 'skip')
BAD_IMAGE_POLICIES = ('skip', 'fail')


@DATASETS.register_module()
class UnlabeledDataset(BaseDataset):
    """A set of images for self-supervised pretraining.

    Where the images come from depends on ``ann_file``:

    * ``''`` (default): every image under ``data_prefix['img']`` (recursive,
      sorted, suffixes ``img_suffixes``);
    * a ``.txt`` file: one image path per line, relative to
      ``data_prefix['img']`` (ImageNet-style ``meta/train.txt``; anything
      after the first whitespace, e.g. a class index, is ignored);
    * a ``.json`` file in COCO format: its ``images``; annotations are
      ignored (``keep_boxes=True`` keeps their boxes as ``instances`` so box
      views can use them, e.g. ground-truth proposals).

    Every data info has ``img_path``, ``img_id`` and ``instances`` (empty
    unless boxes are kept), so mmdet's ``LoadAnnotations`` works on it and
    the pipeline always carries a (possibly empty) ``gt_bboxes``.

    **Proposals.** With ``proposal_file`` (the format of
    :mod:`mmselfdet.datasets.proposals`, e.g. written by
    ``tools/generate_proposals.py``) every data info also gets
    ``proposals = dict(bboxes=float32 (N, 4) x1y1x2y2, scores=float32
    (N,))``, best first, which mmdet's ``LoadProposals`` reads unchanged.
    Images are matched **by COCO image id** when ``ann_file`` is a COCO json
    and **by path relative to the image root** otherwise (the folder that
    was scanned, or ``data_prefix['img']`` for a list file), ``/``
    separated, as the generator writes ``file_name``. ``proposal_filter``
    runs :func:`~mmselfdet.datasets.proposals.filter_proposals` on each
    image at load time with the image size stored in the proposal file
    (``dict()`` gives SoCo's filters: min size 32, aspect 1/3-3,
    sqrt-area ratio 0.3-0.8). An image that ends up without proposals (not
    in the file, an empty list in the file, or everything filtered out) is
    handled by ``missing_proposals``:

    * ``'whole_image'`` (SoCo): the box of the whole image, score 1, is its
      only proposal;
    * ``'error'``: raise, naming the proposal file and the images;
    * ``'skip'``: drop the image from the dataset.

    The counts (images absent from the file, empty before / after
    filtering, boxes removed by each filter) are logged in one line and
    kept in :attr:`proposal_stats`; they describe every listed image,
    before ``indices`` takes a subset. A file that does not match the
    dataset is refused at start-up whatever the policy: when more than
    ``max_absent_ratio`` of the images are absent from it (a file made by
    ``tools/generate_proposals.py`` lists every image it processed, even
    with no proposal), the error says how many images are missing.

    **Bad image files.** ``bad_images`` is the policy for files that cannot
    be read or decoded (corrupt, truncated, empty, not an image):
    ``'skip'`` (default) draws another image instead and counts the file
    (:class:`~mmselfdet.engine.BadImageSummaryHook` lists them at the end of
    each epoch), ``'fail'`` raises naming the file. The pipeline's
    top-level ``LoadImageFromFile`` (color, cv2) is replaced by the
    equivalent :class:`~mmselfdet.datasets.transforms.LoadImageRobust` with
    that policy (same pixels for 8-bit color and gray images, plus 16-bit,
    alpha and truncation handling); a ``LoadImageRobust`` written in the
    pipeline keeps its own ``on_error``.

    Args:
        ann_file (str): See above. Defaults to ''.
        data_root (str): Root joined to ``ann_file`` and ``data_prefix``.
        data_prefix (dict): ``dict(img=...)`` image folder.
        img_suffixes (Sequence[str]): Suffixes of a folder scan.
        keep_boxes (bool): Keep COCO boxes as instances. Defaults to False.
        check_files (bool): Verify at start-up that every listed image
            exists and raise naming the missing ones. Defaults to True; turn
            off for huge lists on slow file systems.
        proposal_file (str, optional): Proposal json; a relative path is
            joined to ``data_root`` (mmdet's convention). Defaults to None.
        proposal_filter (dict, optional): Keyword arguments of
            :func:`~mmselfdet.datasets.proposals.filter_proposals` applied
            at load time; None uses the file as it is. Defaults to None.
        missing_proposals (str): ``'whole_image'``, ``'error'`` or
            ``'skip'``, see above. Defaults to 'whole_image'.
        max_absent_ratio (float): Largest fraction of the images that may be
            absent from the proposal file. Defaults to 0.5.
        bad_images (str): ``'skip'`` or ``'fail'``, see above. Defaults to
            'skip'.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.

    Attributes:
        source (str): ``'folder'``, ``'list'`` or ``'coco'`` once loaded.
        image_root (str): The folder image names are relative to.
        proposal_stats (dict): Proposal counts (empty without a file).
    """

    METAINFO = dict(classes=('object', ))

    def __init__(self,
                 ann_file: str = '',
                 data_root: str = '',
                 data_prefix: dict = dict(img=''),
                 img_suffixes: Sequence[str] = IMG_SUFFIXES,
                 keep_boxes: bool = False,
                 check_files: bool = True,
                 proposal_file: Optional[str] = None,
                 proposal_filter: Optional[dict] = None,
                 missing_proposals: str = 'whole_image',
                 max_absent_ratio: float = 0.5,
                 bad_images: str = 'skip',
                 **kwargs) -> None:
        self.img_suffixes = tuple(s.lower() for s in img_suffixes)
        self.keep_boxes = keep_boxes
        self.check_files = check_files
        if missing_proposals not in MISSING_PROPOSAL_POLICIES:
            raise ValueError(
                f'UnlabeledDataset: missing_proposals must be one of '
                f'{MISSING_PROPOSAL_POLICIES}, got {missing_proposals!r}')
        if proposal_filter is not None:
            unknown = sorted(set(proposal_filter) - set(FILTER_ARGS))
            if unknown:
                raise TypeError(
                    f'UnlabeledDataset: unknown proposal_filter key(s) '
                    f'{unknown}; filter_proposals takes {list(FILTER_ARGS)}')
            proposal_filter = dict(proposal_filter)
        if bad_images not in BAD_IMAGE_POLICIES:
            raise ValueError(
                f'UnlabeledDataset: bad_images must be one of '
                f'{BAD_IMAGE_POLICIES}, got {bad_images!r}')
        self.proposal_file = proposal_file
        self.proposal_filter = proposal_filter
        self.missing_proposals = missing_proposals
        self.max_absent_ratio = float(max_absent_ratio)
        self.bad_images = bad_images
        self.proposal_stats: Dict[str, Any] = {}
        self.source = ''
        self.image_root = ''
        super().__init__(ann_file=ann_file, data_root=data_root,
                         data_prefix=data_prefix, **kwargs)
        self._use_robust_loading()

    def _use_robust_loading(self) -> None:
        """Replace a top-level ``LoadImageFromFile`` by ``LoadImageRobust``
        with the ``bad_images`` policy (see the class doc)."""
        from mmcv.transforms import LoadImageFromFile

        from .transforms.loading import LoadImageRobust
        transforms = self.pipeline.transforms
        for i, t in enumerate(transforms):
            if (type(t) is LoadImageFromFile and t.color_type == 'color'
                    and t.imdecode_backend == 'cv2' and not t.ignore_empty
                    and t.file_client_args is None):
                transforms[i] = LoadImageRobust(
                    on_error=self.bad_images, to_float32=t.to_float32,
                    backend_args=t.backend_args)

    def _img_root(self) -> str:
        return self.data_prefix.get('img', '') or self.data_root

    def load_data_list(self) -> List[dict]:
        ann = self.ann_file
        if not ann or osp.isdir(ann):
            self.source = 'folder'
            self.image_root = ann if ann and osp.isdir(ann) else self._img_root()
            infos = self._scan_folder(self.image_root)
        elif not osp.isfile(ann):
            raise FileNotFoundError(
                f'UnlabeledDataset: ann_file "{ann}" does not exist')
        elif ann.endswith('.json'):
            self.source, self.image_root = 'coco', self._img_root()
            infos = self._load_coco(ann)
        else:
            self.source, self.image_root = 'list', self._img_root()
            infos = self._load_list(ann)
        if not infos:
            raise ValueError(f'UnlabeledDataset: no images found in '
                             f'"{ann or self._img_root()}"')
        if self.check_files:
            missing = [i['img_path'] for i in infos
                       if not osp.isfile(i['img_path'])]
            if missing:
                raise FileNotFoundError(
                    f'UnlabeledDataset: {len(missing)} of {len(infos)} images '
                    f'listed in "{ann or self._img_root()}" do not exist, '
                    f'e.g. {missing[:3]}')
        if self.proposal_file:
            infos = self._attach_proposals(infos)
        return infos

    def image_key(self, info: dict):
        """How ``info`` is looked up in a proposal file: the COCO image id
        for a COCO json, else the path relative to :attr:`image_root`."""
        if self.source == 'coco':
            return info['img_id']
        return relative_image_name(info['img_path'], self.image_root)

    def _proposal_path(self) -> str:
        path = self.proposal_file
        if self.data_root and not osp.isabs(path):
            path = osp.join(self.data_root, path)
        return path

    def _attach_proposals(self, infos: List[dict]) -> List[dict]:
        """Attach ``proposals`` to each info (see the class doc)."""
        path = self._proposal_path()
        table, _ = load_proposal_file(path)
        policy = self.missing_proposals
        removed = {k: 0 for k in FILTER_KEYS}
        boxes_in = boxes_kept = clipped = 0
        absent, empty_file, empty_filter, renamed = [], [], [], []
        kept = []
        for info in infos:
            entry = table.get(self.image_key(info))
            if (entry is not None and self.source == 'coco'
                    and osp.basename(entry['file_name']) != osp.basename(
                        info['img_path'])):
                renamed.append((info['img_id'], info['img_path'],
                                entry['file_name']))
            bboxes = scores = None
            if entry is None:
                absent.append(info['img_path'])
            elif len(entry['bboxes']) == 0:
                empty_file.append(info['img_path'])
            else:
                bboxes, scores = entry['bboxes'], entry['scores']
                boxes_in += len(bboxes)
                if self.proposal_filter is not None:
                    try:
                        bboxes, scores, st = filter_proposals(
                            bboxes, scores, (entry['width'], entry['height']),
                            **self.proposal_filter)
                    except ValueError as e:
                        raise ValueError(
                            f'UnlabeledDataset: proposal file "{path}", image '
                            f'{entry["file_name"]!r}: {e}') from e
                    clipped += st['clipped']
                    for k in FILTER_KEYS:
                        removed[k] += st[k]
                    if len(bboxes) == 0:
                        empty_filter.append(info['img_path'])
                        bboxes = None
            if bboxes is None:
                if policy == 'skip':
                    continue
                if policy == 'whole_image':
                    w, h = self._image_size(info, entry)
                    bboxes = np.array([[0, 0, w, h]], np.float32)
                    scores = np.ones(1, np.float32)
            if bboxes is not None:
                boxes_kept += len(bboxes)
                info['proposals'] = dict(bboxes=bboxes, scores=scores)
            kept.append(info)
        if renamed:
            raise ValueError(
                f'UnlabeledDataset: proposal file "{path}" was made for other '
                f'images: {len(renamed)} image id(s) name another file there, '
                f'e.g. (id, image, name in the file) {renamed[:3]}; COCO '
                'datasets match proposals by image id, so generate the file '
                'from the same COCO json')
        if len(absent) > self.max_absent_ratio * len(infos):
            raise ValueError(
                f'UnlabeledDataset: proposal file "{path}" does not match '
                f'the dataset: {len(absent)} of {len(infos)} images '
                f'({100 * len(absent) / len(infos):.0f} %) are missing from '
                f'it, e.g. {absent[:3]} (max_absent_ratio='
                f'{self.max_absent_ratio}); generate it for this image set '
                'with tools/generate_proposals.py')
        no_props = len(absent) + len(empty_file) + len(empty_filter)
        if policy == 'error' and no_props:
            parts = [f'{len(v)} {what}, e.g. {v[:3]}'
                     for what, v in (('absent from the file', absent),
                                     ('with an empty list', empty_file),
                                     ('emptied by proposal_filter',
                                      empty_filter)) if v]
            raise ValueError(
                f'UnlabeledDataset: proposal file "{path}" gives no proposal '
                f'for {no_props} of {len(infos)} images: ' + '; '.join(parts) +
                " (missing_proposals='error'; use 'whole_image' or 'skip')")
        self.proposal_stats = dict(
            proposal_file=path,
            images=len(infos),
            absent=len(absent),
            empty_in_file=len(empty_file),
            empty_after_filter=len(empty_filter),
            whole_image=no_props if policy == 'whole_image' else 0,
            skipped=no_props if policy == 'skip' else 0,
            boxes_in_file=boxes_in,
            boxes_kept=boxes_kept,
            clipped=clipped,
            **{f'removed_{k}': v for k, v in removed.items()})
        if not kept:
            raise ValueError(
                f'UnlabeledDataset: every image was skipped: proposal file '
                f'"{path}" gives none of the {len(infos)} images a proposal')
        st = self.proposal_stats
        filt = ('' if self.proposal_filter is None else ', removed by filter: ' +
                ' '.join(f'{k}={removed[k]}' for k in FILTER_KEYS))
        print_log(
            f'UnlabeledDataset: proposals from {path}: {len(infos)} images, '
            f'{st["absent"]} absent from the file, {st["empty_in_file"]} empty '
            f'in the file, {st["empty_after_filter"]} emptied by the filter '
            f'-> {no_props} handled by {policy!r}; boxes {boxes_in} in the '
            f'file -> {boxes_kept} kept ({boxes_kept / max(len(kept), 1):.1f} '
            f'per image){filt}',
            logger='current')
        return kept

    def _image_size(self, info: dict, entry: Optional[dict]) -> tuple:
        """(width, height) for the whole-image box: the proposal file's
        entry, the COCO json, or the image header, in that order."""
        if entry is not None and entry['width'] > 0 and entry['height'] > 0:
            return entry['width'], entry['height']
        if info.get('width') and info.get('height'):
            return info['width'], info['height']
        try:
            return image_size_from_header(info['img_path'])
        except ValueError as e:
            raise ValueError(
                f'UnlabeledDataset: need the size of "{info["img_path"]}" for '
                f'its whole-image proposal but cannot read it ({e})') from e

    def _scan_folder(self, root: str) -> List[dict]:
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'UnlabeledDataset: image folder "{root}" does not exist')
        paths = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            paths += [osp.join(dirpath, f) for f in sorted(filenames)
                      if f.lower().endswith(self.img_suffixes)]
        if not paths:
            raise ValueError(
                f'UnlabeledDataset: image folder "{root}" holds no image '
                f'with a suffix in {self.img_suffixes}')
        return [self._info(p, i) for i, p in enumerate(paths)]

    def _load_list(self, ann: str) -> List[dict]:
        with open(ann) as f:
            lines = [ln.split()[0] for ln in f if ln.strip()]
        root = self._img_root()
        return [self._info(osp.join(root, p), i) for i, p in enumerate(lines)]

    def _load_coco(self, ann: str) -> List[dict]:
        with open(ann) as f:
            coco = json.load(f)
        if 'images' not in coco:
            raise KeyError(f'UnlabeledDataset: "{ann}" is not a COCO json '
                           '(no "images" key)')
        boxes = {}
        if self.keep_boxes:
            for a in coco.get('annotations', []):
                x, y, w, h = a['bbox']
                if w > 0 and h > 0:
                    boxes.setdefault(a['image_id'], []).append(
                        dict(bbox=[x, y, x + w, y + h], bbox_label=0,
                             ignore_flag=0))
        root = self._img_root()
        return [
            self._info(osp.join(root, im['file_name']), im['id'],
                       height=im.get('height'), width=im.get('width'),
                       instances=boxes.get(im['id'], []))
            for im in coco['images']
        ]

    @staticmethod
    def _info(path: str,
              img_id,
              height: Optional[int] = None,
              width: Optional[int] = None,
              instances: Optional[list] = None) -> dict:
        info = dict(img_path=path, img_id=img_id, instances=instances or [])
        if height is not None and width is not None:
            info.update(height=height, width=width)
        return info
