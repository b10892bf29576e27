"""sha256 integrity of pinned files: every pinned weight and data file is verified before use."""

from __future__ import annotations

import hashlib
from pathlib import Path


class IntegrityError(ValueError):
    """A pinned file is missing or its sha256 differs from the pinned one."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks.

    Raises:
        OSError: when the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, error: type[Exception] = IntegrityError) -> None:
    """Raise ``error`` unless the file at ``path`` exists and its sha256 equals ``expected``.

    Args:
        path: the pinned file.
        expected: its pinned hex sha256.
        error: the exception class raised (callers pass their own ``ValueError`` subclass).

    Raises:
        IntegrityError: (or ``error``) for a missing file or a mismatch, naming both digests.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"pinned file {path} is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise error(f"sha256 mismatch for {path}: expected {expected}, found {actual}; refusing to load")
