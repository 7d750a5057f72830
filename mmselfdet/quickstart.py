# Copyright (c) mmselfdet contributors. All rights reserved.
"""The main job: the toy benchmark's ``cpu`` preset.

``python -m mmselfdet.quickstart`` (or ``bash tools/quickstart.sh``, which
sets up the environment first) is ``tools/benchmarks/toy_table.py --preset
cpu --work-dir work_dirs/quickstart``: random init, MoCo v2 and InsLoc
pretrained on the toy ``unlabeled`` split, probed, fine-tuned on the 10 %
split of toy ``train`` with 3 seeds, and compared on toy ``val``. Every
option of the benchmark works here (``--methods``, ``--seeds``,
``--pretrain-iters``, ``--report-only``, ...); see
:mod:`mmselfdet.benchmarks.toy_table`.
"""
from typing import List, Optional

from mmselfdet.benchmarks.methods import METHODS, RENAMED  # noqa: F401
from mmselfdet.benchmarks.toy_table import main as _toy_table

DEFAULTS = ['--preset', 'cpu', '--work-dir', 'work_dirs/quickstart']


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the toy benchmark; ``argv`` overrides the defaults above."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    return _toy_table(DEFAULTS + argv)


if __name__ == '__main__':
    main()
