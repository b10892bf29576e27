"""Writing to disk: a failed write is one clear error naming the path and the cause.

Every file the project writes (results, checkpoints, model weights) is written through
:func:`writing`, which turns the errors of a full disk, a read-only or missing folder, or
PyTorch's serialiser failing half-way (``RuntimeError: [enforce fail at
inline_container.cc...]``) into a :class:`StorageError` such as ``cannot write
results/model-1f2e/work/model: no space left on device (0.0 MB free)``. :func:`atomic`
writes to a temporary name beside the target and moves it into place, so a failed write
leaves no half-written file (or folder) under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: free space (bytes) below which a failed write is reported as a full disk
FULL_DISK_BYTES = 1 << 20


class StorageError(OSError):
    """A file or folder could not be written (full disk, no permission, missing folder)."""


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def cause(path: Path, err: BaseException) -> str:
    """The reason a write to ``path`` failed, in words (``permission denied``, ``no space left on device``)."""
    code = getattr(err, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = os.strerror(code).lower()
    elif code is not None:
        reason = (getattr(err, "strerror", None) or os.strerror(code)).lower()
    else:  # PyTorch's writer says only "unexpected pos" or "file write failed"
        reason = "the write failed part-way (a full disk or a file size limit)"
    free = _free_bytes(Path(path))
    if code not in (errno.EACCES, errno.EPERM, errno.EROFS) and free is not None and free < FULL_DISK_BYTES:
        reason = f"no space left on device ({free / 1e6:.1f} MB free)"
    return reason


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Run the block that writes ``path``; turn its I/O failures into one :class:`StorageError`.

    Raises:
        StorageError: naming ``path`` and the cause, for an ``OSError`` or a ``RuntimeError``
            raised by PyTorch's file writer; other errors pass through unchanged.
    """
    try:
        yield
    except StorageError:
        raise
    except OSError as err:
        raise StorageError(f"cannot write {path}: {cause(path, err)}") from err
    except RuntimeError as err:
        message = str(err)
        if "inline_container" not in message and "file write failed" not in message and "PytorchStreamWriter" \
                not in message:
            raise
        raise StorageError(f"cannot write {path}: {cause(path, err)}") from err


@contextlib.contextmanager
def atomic(path: Path, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary file (or, with ``folder``, a temporary folder) beside ``path`` for the
    block to write; when the block succeeds, move it into place in one ``os.replace`` (an old
    folder at ``path`` is removed first), otherwise remove it.

    Raises:
        StorageError: as :func:`writing`, naming ``path``.
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        else:
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            os.close(fd)
            tmp = Path(name)
        try:
            yield tmp
            if folder:
                shutil.rmtree(path, ignore_errors=True)
            os.replace(tmp, path)
        except BaseException:
            if folder:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            raise
