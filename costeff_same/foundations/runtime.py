"""How a run executes, as opposed to what it computes: the device and the stage graph's executor.

These settings never change what a stage computes on a CPU, so they are not stage config
fields; they travel as environment variables, which papermill's kernels, the local pool's
processes and a Dask ``LocalCluster``'s workers inherit (a remote Dask worker receives them
with each task: :mod:`costeff_same.engine.parallel`):

- ``COSTEFF_SAME_DEVICE``: ``auto`` (CUDA when there is one, else the CPU), ``cpu`` or
  ``cuda``; unset: ``cpu``. A stage computed on CUDA is cached under its own key
  (:func:`costeff_same.engine.results.entry_key`), never served for a CPU run.
- ``COSTEFF_SAME_EXECUTOR``: ``local`` (a spawn pool on this machine, the default) or
  ``dask`` (Dask distributed: a ``LocalCluster``, or the cluster at ``COSTEFF_SAME_SCHEDULER``).
- ``COSTEFF_SAME_SCHEDULER``: a Dask scheduler address (``tcp://HOST:PORT``) to join.
- ``COSTEFF_SAME_WORKERS``: stages side by side (default: one per available core).

A profile may set them in its ``run`` mapping (``configs/paper.yaml``: ``device: auto``);
the command line's ``--device``, ``--executor``, ``--scheduler`` and ``--workers`` win
(:func:`apply`).
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from costeff_same.foundations.config import ConfigError, choice, profile_path

DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "dask")

#: setting -> its environment variable
ENV = {"device": "COSTEFF_SAME_DEVICE", "executor": "COSTEFF_SAME_EXECUTOR",
       "scheduler": "COSTEFF_SAME_SCHEDULER", "workers": "COSTEFF_SAME_WORKERS"}


class DeviceError(ConfigError):
    """The device asked for is not on this machine."""


def setting(name: str) -> str | None:
    """The value of run setting ``name`` (a key of :data:`ENV`) in this process, None when unset."""
    value = os.environ.get(ENV[name], "").strip()
    return value or None


def device_name() -> str:
    """The device setting: ``auto``, ``cpu`` or ``cuda`` (unset: ``cpu``).

    Raises:
        ConfigError: for another value (naming it and the accepted ones).
    """
    return choice("device", setting("device") or "cpu", DEVICES)


def resolve_device(name: str | None = None) -> str:
    """The torch device a stage runs on: ``cpu`` or ``cuda``.

    Args:
        name: ``auto`` (CUDA when ``torch.cuda.is_available()``, else the CPU), ``cpu`` or
            ``cuda``; None: :func:`device_name`.

    Raises:
        ConfigError: for an unknown name (the accepted ones are listed).
        DeviceError: for ``cuda`` on a machine where torch sees no CUDA device.
    """
    import torch

    name = choice("device", name, DEVICES) if name is not None else device_name()
    cuda = torch.cuda.is_available()
    if name == "cuda" and not cuda:
        raise DeviceError(f"device 'cuda' was asked for, but torch {torch.__version__} sees no CUDA device on this "
                          "machine (torch.cuda.is_available() is False); use device 'auto' (the CPU here) or 'cpu'")
    return "cuda" if name == "cuda" or (name == "auto" and cuda) else "cpu"


def executor_name() -> str:
    """The executor setting: ``local`` or ``dask`` (unset: ``local``; a scheduler address implies ``dask``).

    Raises:
        ConfigError: for another value (naming it and the accepted ones).
    """
    default = "dask" if setting("scheduler") else "local"
    return choice("executor", setting("executor") or default, EXECUTORS)


def workers() -> int | None:
    """The workers setting (None: one per available core).

    Raises:
        ConfigError: for a value that is not a whole number >= 1.
    """
    value = setting("workers")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"workers={value} must be >= 1, a whole number ({ENV['workers']}={value!r})")
    return int(value)


def profile_settings(profile: str) -> dict[str, Any]:
    """The ``run`` mapping of ``configs/<profile>.yaml`` (empty when it has none).

    Raises:
        ConfigError: for an unknown profile, or a key of ``run`` that is not a run setting.
    """
    data = yaml.safe_load(profile_path(profile).read_text()) or {}
    run = data.get("run") or {}
    unknown = sorted(set(run) - set(ENV))
    if unknown:
        raise ConfigError(f"{profile_path(profile)}: unknown run setting(s) {unknown}; accepted: {', '.join(ENV)}")
    return run


def apply(profile: str | None = None, **given: Any) -> dict[str, str]:
    """Set this process's run settings (and so its children's): the profile's ``run`` mapping,
    then every ``given`` value that is not None. Each value is checked first.

    Returns:
        The settings now in force, ``{name: value}``.

    Raises:
        ConfigError: for an unknown setting or value (naming the accepted ones), or a device
            that is not on this machine (:class:`DeviceError`).
    """
    values = {**(profile_settings(profile) if profile else {}),
              **{k: v for k, v in given.items() if v is not None}}
    unknown = sorted(set(values) - set(ENV))
    if unknown:
        raise ConfigError(f"unknown run setting(s) {unknown}; accepted: {', '.join(ENV)}")
    before = {name: os.environ.get(ENV[name]) for name in values}
    for name, value in values.items():
        os.environ[ENV[name]] = str(value)
    try:                                    # each one checked; a bad one leaves the settings as they were
        device_name(), executor_name(), workers()
        resolve_device()
    except ConfigError:
        for name, value in before.items():
            if value is None:
                del os.environ[ENV[name]]
            else:
                os.environ[ENV[name]] = value
        raise
    return {name: setting(name) for name in ENV if setting(name) is not None}
