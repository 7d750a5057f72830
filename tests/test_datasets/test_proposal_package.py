# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/datasets/proposals/__init__.py, mmselfdet/utils/
"""The proposal package: the old import path keeps its names, and nothing
in it (or in mmselfdet.utils) imports the dataset back."""
import ast
import glob
import importlib
import os.path as osp

import mmselfdet.datasets.proposals as proposals
from ..utils import REPO

#: The public names of the former single-file module.
OLD_NAMES = (
    'PROPOSAL_FORMAT', 'PROPOSAL_FORMAT_VERSION', 'BBOX_DECIMALS',
    'SCORE_DIGITS', 'FILTER_KEYS', 'rank_scores', 'save_proposal_file',
    'load_proposal_file', 'filter_proposals', 'selective_search',
    'read_image_bgr', 'to_bgr_uint8', 'relative_image_name', 'list_images',
    'write_proposal_json', 'round_coord', 'round_score', 'FILTER_ARGS',
    'image_size_from_header')


def test_old_import_path_exports_the_same_names():
    assert set(OLD_NAMES) <= set(proposals.__all__)
    homes = dict(format=('PROPOSAL_FORMAT', 'save_proposal_file',
                         'load_proposal_file', 'write_proposal_json',
                         'rank_scores', 'round_coord', 'round_score'),
                 filters=('FILTER_KEYS', 'FILTER_ARGS', 'filter_proposals'),
                 images=('list_images', 'image_size_from_header',
                         'read_image_bgr', 'to_bgr_uint8',
                         'relative_image_name'),
                 selective_search=('selective_search', ))
    for module, names in homes.items():
        mod = importlib.import_module(f'mmselfdet.datasets.proposals.{module}')
        for name in names:
            assert getattr(proposals, name) is getattr(mod, name), name
    # one decoder: the proposal reader is the shared one of mmselfdet.utils
    from mmselfdet.utils import image
    assert proposals.read_image_bgr is image.read_image_bgr
    assert proposals.to_bgr_uint8 is image.to_bgr_uint8


def _imports(path):
    """Every module an import statement of ``path`` names (also inside
    functions), relative imports resolved against the file's package."""
    pkg = osp.relpath(osp.dirname(path), REPO).replace(osp.sep, '.')
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = pkg.rsplit('.', node.level - 1)[0] if node.level else ''
            mod = '.'.join(p for p in (base, node.module) if p)
            out.add(mod)
            out |= {f'{mod}.{a.name}' for a in node.names}
    return out


def test_no_module_imports_the_dataset_back():
    """The dataset imports the proposal package, never the reverse (the
    former module imported UnlabeledDataset inside list_images: a cycle);
    mmselfdet.utils imports no other part of mmselfdet."""
    files = glob.glob(osp.join(REPO, 'mmselfdet/datasets/proposals/*.py'))
    utils = glob.glob(osp.join(REPO, 'mmselfdet/utils/*.py'))
    assert len(files) >= 6 and len(utils) >= 4
    for path in files + utils:
        names = _imports(path)
        back = {n for n in names if n.startswith((
            'mmselfdet.datasets.unlabeled', 'mmselfdet.datasets.UnlabeledD',
            'mmselfdet.models'))}
        assert not back, (path, back)
        if path in utils:
            own = {n for n in names if n.startswith('mmselfdet')
                   and not n.startswith('mmselfdet.utils')}
            assert not own, (path, own)
    # the relative-import resolution works (the check is not vacuous)
    unlabeled = _imports(osp.join(REPO, 'mmselfdet/datasets/unlabeled.py'))
    assert 'mmselfdet.datasets.proposals.attach' in unlabeled
