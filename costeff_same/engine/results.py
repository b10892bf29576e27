"""The results cache: ``load_or_run(name, config, fn)``, keyed by config, data and code.

An entry's key is the sha256 of the config's key data (its fields and the sha256 of every
local file it reads: :meth:`costeff_same.foundations.config.StageConfig.key_data`) and the
code fingerprint of the stage function (:func:`costeff_same.engine.fingerprint.code_fingerprint`:
its module and every package module below it, without docstrings and comments). A change of
the code that computes an entry, or of a file it reads, therefore keys a new entry; the
old one is never served for the new code.

Each entry is a folder ``results/<name>-<hash>/`` holding ``result.json`` (the record
``fn`` returned), ``config.json``, ``provenance.json`` (package versions, git sha,
seed, seconds) and any artefacts ``fn`` wrote into its work folder (model weights).
An entry is complete only when ``manifest.json`` exists: it is written last and holds the
sha256 of every file, so an interrupted or corrupted entry is detected and recomputed,
never silently used (the showyourwork input-keyed cache; nanoGPT's checkpoint-with-config).
All writes are atomic (temporary file + ``os.replace``), and a failed write (a full disk, a
read-only folder) is one :class:`~costeff_same.foundations.storage.StorageError` naming the
path and the cause.

One process at a time computes an entry: :func:`load_or_run` holds an inter-process lock
(``<entry>.lock``, the ``filelock`` package's ``fcntl`` lock, which the operating system
releases when its holder dies, so a killed run never leaves a lock that blocks) while it
computes and seals the entry. A second run of the same stage waits for the lock, then
finds the sealed entry and reads it; if the holder was killed, the waiter computes the
entry itself, resuming from the holder's last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from costeff_same.engine.fingerprint import code_fingerprint
from costeff_same.engine.threads import one_thread
from costeff_same.foundations import progress, runtime
from costeff_same.foundations.config import StageConfig
from costeff_same.foundations.integrity import sha256_file
from costeff_same.foundations.paths import REPO_DIR, results_dir
from costeff_same.foundations.storage import atomic, writing

MANIFEST = "manifest.json"
TRACKED_PACKAGES = ("costeff-same", "torch", "transformers", "datasets", "numpy", "scikit-learn")


class CorruptResultWarning(UserWarning):
    """A cache entry failed its checksum and is being recomputed."""


class ConcurrentRunWarning(UserWarning):
    """Another process holds the lock of the entry this one needs: this one waits and reads its result."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old or the new file, never half).

    Raises:
        StorageError: when the folder cannot be created or the file cannot be written.
    """
    with atomic(path) as tmp, open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_json(path: Path, data: Any) -> None:
    """:func:`atomic_write_text` of ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable))


def no_nan(value: Any) -> Any:
    """``value`` with every float nan (an undefined figure: no examples) or infinity replaced by
    None (JSON null), so that it prints as strict JSON."""
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [no_nan(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a result record")


def provenance(seed: int | None = None) -> dict[str, Any]:
    """Package versions, git sha, python, platform and torch's intra-op thread count of the current run.

    The thread count is recorded because CPU training is bit-reproducible for a given
    thread count but not across thread counts (the order of float reductions changes);
    every stage runs on one (:mod:`costeff_same.engine.threads`).
    """
    import torch

    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {
        "versions": versions,
        "git_sha": sha,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "device": runtime.resolve_device(),
        "seed": seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


#: stage name -> the function that computes its entries (registered by :func:`load_or_run`
#: and :func:`stage`), whose code fingerprint keys them
_STAGES: dict[str, Callable] = {}


def stage(name: str):
    """Register the decorated function as the computation of stage ``name``.

    The registration lets :func:`is_cached`, :func:`load_result` and :func:`entry_dir` find
    an entry (whose key includes the function's code) without running it.
    """
    def register(fn: Callable) -> Callable:
        _STAGES[name] = fn
        return fn
    return register


def entry_key(name: str, config: StageConfig, fn: Callable | None = None) -> str:
    """16 hex digits: the sha256 of ``config``'s key data and the code fingerprint of ``fn``
    (and of the device, where a stage runs on one other than the CPU:
    :func:`costeff_same.foundations.runtime.resolve_device`).

    Raises:
        KeyError: when ``fn`` is None and no function is registered for ``name``.
    """
    if fn is None:
        if name not in _STAGES:
            raise KeyError(f"no stage function is registered for {name!r}; registered: {', '.join(sorted(_STAGES))}")
        fn = _STAGES[name]
    key = {"config": config.key_data(), "code": code_fingerprint(fn)}
    device = runtime.resolve_device()
    if device != "cpu":         # a GPU's floats differ from the CPU's: its entries never stand in for them
        key["device"] = device
    blob = json.dumps(key, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_dir(name: str, config: StageConfig, fn: Callable | None = None) -> Path:
    """Folder of the cache entry for ``name`` and ``config`` (it may not exist yet)."""
    return results_dir() / f"{name}-{entry_key(name, config, fn)}"


def _verify(entry: Path) -> bool:
    manifest_path = entry / MANIFEST
    if not manifest_path.exists():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
        return all(
            (entry / rel).is_file() and sha256_file(entry / rel) == digest
            for rel, digest in manifest["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def is_cached(name: str, config: StageConfig, fn: Callable | None = None) -> bool:
    """True when a complete, checksum-verified entry exists (of ``fn``, or the registered function)."""
    return _verify(entry_dir(name, config, fn))


def load_result(name: str, config: StageConfig) -> dict[str, Any]:
    """The stored record of a complete entry.

    Raises:
        FileNotFoundError: when no complete, verified entry exists.
    """
    entry = entry_dir(name, config)
    if not _verify(entry):
        raise FileNotFoundError(f"no complete result for {name} with config {config.config_hash()}")
    return json.loads((entry / "result.json").read_text())


def load_entry(name: str, key: str) -> dict[str, Any]:
    """The stored record of the complete entry ``<name>-<key>``, ``key`` being an
    :func:`entry_key` (so it names the config *and* the code that computed it).

    Raises:
        FileNotFoundError: when no complete, checksum-verified entry of that name and key exists.
    """
    entry = results_dir() / f"{name}-{key}"
    if not _verify(entry):
        raise FileNotFoundError(f"no complete result {entry.name} in {results_dir()}: run the stage that "
                                f"computes it first (its chapter, or `costeff-same train`)")
    return _read(entry)


def load_or_run(
    name: str,
    config: StageConfig,
    fn: Callable[[StageConfig, Path], dict[str, Any]],
    seed: int | None = None,
) -> dict[str, Any]:
    """Return the cached record of ``fn(config, workdir)``, computing it if needed.

    ``fn`` receives the config and a work folder for artefacts (``workdir``) and
    returns a JSON-able record. While it runs, ``workdir`` is the entry's ``work/``
    subfolder, which persists between attempts so that ``fn`` can resume from its own
    checkpoints; on success the entry is sealed with a manifest of sha256 sums.

    Args:
        name: the stage name (part of the folder name).
        config: the stage config; its hash keys the entry.
        fn: the computation.
        seed: recorded in the provenance.

    Returns:
        The record, with ``"_entry"`` set to the entry folder.

    Raises:
        StorageError: when the results folder cannot be written (full disk, no permission).
    """
    _STAGES[name] = fn
    entry = entry_dir(name, config, fn)
    title = _title(entry, config)
    if _verify(entry):
        progress.stage_line(title, "read")
        return _read(entry)
    lock = FileLock(str(entry) + ".lock")
    with writing(entry):
        entry.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            warnings.warn(f"another run is computing {entry.name}: waiting for it", ConcurrentRunWarning,
                          stacklevel=2)
            lock.acquire()
    try:
        if _verify(entry):  # the other run sealed it while this one waited
            progress.stage_line(title, "waited")
            return _read(entry)
        progress.stage_line(title, "computing")
        started = time.perf_counter()
        record = _compute(name, config, fn, seed, entry)
        progress.stage_line(title, "done", time.perf_counter() - started)
        return record
    finally:
        lock.release()


def without_entry(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without the ``"_entry"`` that :func:`load_or_run` adds: what a record that
    keeps another stage's record stores (it names no cache folder)."""
    return {k: v for k, v in record.items() if k != "_entry"}


def _title(entry: Path, config: StageConfig) -> str:
    """``stage <name> <key> (<label>)``: how the terminal names an entry."""
    label = config.label()
    return f"stage {entry.name}" + (f" ({label})" if label else "")


def _read(entry: Path) -> dict[str, Any]:
    record = json.loads((entry / "result.json").read_text())
    record["_entry"] = str(entry)
    return record


def _compute(name: str, config: StageConfig, fn: Callable, seed: int | None, entry: Path) -> dict[str, Any]:
    """Compute, store and seal the entry ``entry`` (the caller holds its lock)."""
    if (entry / MANIFEST).exists():
        warnings.warn(f"cache entry {entry} failed its checksum: recomputing", CorruptResultWarning)
        (entry / MANIFEST).unlink()
        (entry / "result.json").unlink(missing_ok=True)
    work = entry / "work"
    with writing(work):
        work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with one_thread():          # no result depends on the machine's core count (engine.threads)
        record = fn(config, work)
        info = provenance(seed)
    info["seconds"] = round(time.time() - started, 3)
    atomic_write_json(entry / "config.json", {"name": name, **config.to_dict(), "_key": config.key_data(),
                                               "_code": code_fingerprint(fn)})
    atomic_write_json(entry / "provenance.json", info)
    atomic_write_json(entry / "result.json", record)
    files = {
        str(p.relative_to(entry)): sha256_file(p)
        for p in sorted(entry.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
        and "checkpoint" not in p.relative_to(entry).parts
    }
    atomic_write_json(entry / MANIFEST, {"files": files})
    return _read(entry)
