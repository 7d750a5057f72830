# Copyright (c) mmselfdet contributors. All rights reserved.
"""Toy benchmark: pretrain -> export -> k-NN probe -> low-data fine-tuning
with seeds -> table (markdown, CSV, PNG), resumable.

Usage::

    python tools/benchmarks/toy_table.py --preset cpu        # README job
    python tools/benchmarks/toy_table.py --preset cpu-all    # every method
    python tools/benchmarks/toy_table.py --preset gpu --part 1/2
    python tools/benchmarks/toy_table.py --preset paper      # cluster cmds
    python tools/benchmarks/toy_table.py --preset cpu --dry-run

See :mod:`mmselfdet.benchmarks.toy_table` for the protocol.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmselfdet.benchmarks.toy_table import main  # noqa: E402

if __name__ == '__main__':
    main()
