"""Experiment tracking: TensorBoard event files for the training loops (``tracking: tensorboard``).

SASRec's loop writes its epoch rows; the LLM's Trainer gets transformers' own TensorBoard
callback on the same writer, plus the validation metrics our callback computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def event_writer(folder: Path | None) -> SummaryWriter | None:
    """A TensorBoard writer into ``folder`` (a resumed run adds an event file beside the first), or None."""
    if folder is None:
        return None
    from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package: only when asked for

    return SummaryWriter(log_dir=str(folder))
