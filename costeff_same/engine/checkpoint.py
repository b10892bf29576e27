"""Resumable training state that cannot run code, written atomically.

A checkpoint holds tensors (weights, optimiser moments, the RNG state) and plain data
(positions, histories, configs). It is written with ``torch.save`` to a temporary file and
moved into place, and read back with ``torch.load(weights_only=True)``, which unpickles
only tensors and plain containers: a pickle planted in the results folder cannot run code
(PyTorch's safe loader; https://pytorch.org/docs/stable/notes/serialization.html). A
checkpoint that fails to load (torn, truncated, planted) is set aside with a warning and the
stage restarts from its beginning; nothing else in the work folder is touched.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from costeff_same.foundations.storage import atomic


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint failed to load and was set aside; the stage restarts from its beginning."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain data only) to ``path`` atomically.

    Raises:
        StorageError: for a full disk or a folder that cannot be written (the previous
            checkpoint, if any, is left as it was).
    """
    with atomic(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``, or None when there is none or it cannot be trusted.

    A file that fails to load with ``weights_only=True`` (a truncated write, a pickle that
    asks for code) is renamed to ``<name>.rejected`` and a :class:`CorruptCheckpointWarning`
    names it; the caller then starts the stage from its beginning.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        if not isinstance(state, dict):
            raise ValueError(f"expected a mapping, found {type(state).__name__}")
        return state
    except Exception as err:  # noqa: BLE001 - any failure means: do not trust this file
        rejected = path.with_suffix(path.suffix + ".rejected")
        os.replace(path, rejected)
        warnings.warn(f"checkpoint {path} could not be loaded safely ({type(err).__name__}: "
                      f"{str(err)[:200]}); set aside as {rejected.name}, restarting the stage",
                      CorruptCheckpointWarning, stacklevel=2)
        return None
