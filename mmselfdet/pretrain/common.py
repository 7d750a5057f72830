# Copyright (c) mmselfdet contributors. All rights reserved.
"""What the stages of own-data pretraining share: the repository root, the
methods it offers (a view of the one method table) and the input error."""
from typing import Dict, NamedTuple, Optional

from mmselfdet.methods import METHODS as ALL_METHODS
from mmselfdet.utils.paths import project_root

# holds configs/ and tools/: the checkout, or mmselfdet/.mim in a wheel
REPO = project_root()


class Method(NamedTuple):
    """A method for own-data pretraining (a row of
    :data:`mmselfdet.methods.METHODS` with a paper config)."""
    config: str  # the paper config
    paper_images: int  # images of its dataset (the budget's reference)
    prepare: Optional[str]  # None, 'selective_search' or 'detr_stages'
    downstream: str  # detector config the export is checked against
    needs_backbone: bool = False  # --backbone CKPT is required


# Every row with a paper config; SoCo on ground-truth boxes (the toy
# table's oracle row) needs labels, so own images use 'soco-ss'.
METHODS: Dict[str, Method] = {
    name: Method(m.paper_config, m.paper_images,
                 m.prepare.kind if m.prepare else None, m.downstream,
                 m.needs_backbone)
    for name, m in ALL_METHODS.items() if m.paper_config
}


class InputError(SystemExit):
    """Bad input: the message names the file or folder and what is wrong."""

    def __init__(self, msg: str):
        super().__init__(f'error: {msg}')
