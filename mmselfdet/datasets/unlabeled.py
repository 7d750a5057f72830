# Copyright (c) mmselfdet contributors. All rights reserved.
"""Images without labels: a folder, a list file, or a COCO json."""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

from mmengine.dataset import BaseDataset

from mmselfdet.registry import DATASETS
from mmselfdet.utils.image_list import (IMG_SUFFIXES, list_image_infos,
                                        relative_image_name)

from .proposals.attach import MISSING_PROPOSAL_POLICIES, attach_proposals
from .proposals.filters import FILTER_ARGS

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

    **Bad image files.** Name the loader in the config:
    ``dict(type='LoadImageRobust', on_error='skip')`` (the base dataset
    configs do; ``'skip'`` draws another image instead and counts the file,
    :class:`~mmselfdet.engine.BadImageSummaryHook` lists them at the end of
    each epoch; ``'fail'`` raises naming the file). ``bad_images``, when
    given, is the policy that loader must have: a top-level
    ``LoadImageRobust`` with another ``on_error`` is refused at start-up.
    A top-level plain ``LoadImageFromFile`` is refused too, naming its
    ``pipeline[i]`` and the fix (``_base_.load_image`` of
    ``configs/_base_/datasets/view_augs.py``, or ``dict(type=
    'LoadImageRobust', on_error=...)``: the same pixels for 8-bit color and
    gray images, plus 16-bit, alpha and truncation handling); it was once
    swapped in silently, then with a deprecation warning.

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
        bad_images (str, optional): ``'skip'`` or ``'fail'``, see above.
            Defaults to None (the loader's own policy).
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
                 bad_images: Optional[str] = None,
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
        if bad_images is not None and bad_images not in BAD_IMAGE_POLICIES:
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
        self._check_image_loader()

    def _check_image_loader(self) -> None:
        """Check the pipeline's top-level image loader against
        ``bad_images``; refuse a plain ``LoadImageFromFile`` (see the class
        doc)."""
        from mmcv.transforms import LoadImageFromFile

        from .transforms.loading import LoadImageRobust
        want = {'fail': 'raise'}.get(self.bad_images, self.bad_images)
        for i, t in enumerate(self.pipeline.transforms):
            if type(t) is LoadImageRobust and want not in (None, t.on_error):
                raise ValueError(
                    f'UnlabeledDataset: bad_images={self.bad_images!r} but '
                    f'the pipeline loads with {t!r}; set on_error in the '
                    'LoadImageRobust of the config (or drop bad_images)')
            if type(t) is LoadImageFromFile:
                policy = self.bad_images or 'skip'
                raise ValueError(
                    f'UnlabeledDataset ({self._img_root()!r}): pipeline[{i}] '
                    'is a plain LoadImageFromFile, which has no bad-image '
                    "policy; write dict(type='LoadImageRobust', "
                    f'on_error={policy!r}) there instead (the config key '
                    f'train_dataloader.dataset.pipeline[{i}], or '
                    f'.dataset.dataset.pipeline[{i}] under a wrapper such '
                    'as MultiImageMixDataset), as the base configs do with '
                    '_base_.load_image of configs/_base_/datasets/'
                    'view_augs.py')

    def _img_root(self) -> str:
        return self.data_prefix.get('img', '') or self.data_root

    def load_data_list(self) -> List[dict]:
        self.source, self.image_root, infos = list_image_infos(
            self.ann_file, self._img_root(), self.img_suffixes,
            self.keep_boxes, self.check_files)
        if self.proposal_file:
            infos, self.proposal_stats = attach_proposals(
                infos, self._proposal_path(), self.image_key,
                by_id=self.source == 'coco',
                proposal_filter=self.proposal_filter,
                missing_proposals=self.missing_proposals,
                max_absent_ratio=self.max_absent_ratio)
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


__all__ = ['UnlabeledDataset', 'IMG_SUFFIXES', 'MISSING_PROPOSAL_POLICIES',
           'BAD_IMAGE_POLICIES']
