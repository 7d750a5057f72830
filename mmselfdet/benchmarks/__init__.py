# Copyright (c) mmselfdet contributors. All rights reserved.
"""The toy benchmark (``tools/benchmarks/toy_table.py``, the README's main
job): pretrain -> export -> probe -> low-data fine-tuning with seeds ->
table, resumable. See :mod:`mmselfdet.benchmarks.toy_table`."""
