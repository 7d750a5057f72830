# Copyright (c) mmselfdet contributors. All rights reserved.
"""Images without labels: a folder, a list file, or a COCO json."""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset

from mmselfdet.registry import DATASETS

IMG_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


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

    Args:
        ann_file (str): See above. Defaults to ''.
        data_root (str): Root joined to ``ann_file`` and ``data_prefix``.
        data_prefix (dict): ``dict(img=...)`` image folder.
        img_suffixes (Sequence[str]): Suffixes of a folder scan.
        keep_boxes (bool): Keep COCO boxes as instances. Defaults to False.
        check_files (bool): Verify at start-up that every listed image
            exists and raise naming the missing ones. Defaults to True; turn
            off for huge lists on slow file systems.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(classes=('object', ))

    def __init__(self,
                 ann_file: str = '',
                 data_root: str = '',
                 data_prefix: dict = dict(img=''),
                 img_suffixes: Sequence[str] = IMG_SUFFIXES,
                 keep_boxes: bool = False,
                 check_files: bool = True,
                 **kwargs) -> None:
        self.img_suffixes = tuple(s.lower() for s in img_suffixes)
        self.keep_boxes = keep_boxes
        self.check_files = check_files
        super().__init__(ann_file=ann_file, data_root=data_root,
                         data_prefix=data_prefix, **kwargs)

    def _img_root(self) -> str:
        return self.data_prefix.get('img', '') or self.data_root

    def load_data_list(self) -> List[dict]:
        ann = self.ann_file
        if not ann or osp.isdir(ann):
            infos = self._scan_folder(ann if ann and osp.isdir(ann)
                                      else self._img_root())
        elif not osp.isfile(ann):
            raise FileNotFoundError(
                f'UnlabeledDataset: ann_file "{ann}" does not exist')
        elif ann.endswith('.json'):
            infos = self._load_coco(ann)
        else:
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
        return infos

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
