"""Run the Jupytext chapters with papermill under a profile, into ``book/``.

Each chapter is a percent-format ``notebooks/NN_name.py`` whose first code cell is tagged
``parameters``. :func:`run_chapter` converts it with ``jupytext``, injects the profile's
parameters for that chapter with ``papermill`` and writes ``book/NN_name.ipynb``, which
Jupyter Book renders with execution off. The parameters are checked against the chapter's
schema before anything runs; a chapter that fails is written to ``_build/failed/`` and
never over the built chapter in ``book/``, and its error (a bad parameter, a missing file)
is one line in the notebook and in the terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from costeff_same.foundations.config import ConfigError, load_profile
from costeff_same.foundations.paths import BOOK_DIR, FAILED_DIR, NOTEBOOKS_DIR, REPO_DIR, results_dir
from costeff_same.foundations.progress import PROGRESS_ENV, Relay, read_entries, stage_counts
from costeff_same.foundations.storage import atomic

_STARTED: list[float] = []   # when setup() ran in this kernel (perf_counter seconds)


def setup() -> None:
    """Quiet set-up for a chapter: no library progress bars in the book, the book's plot style
    with vector (SVG) figures, tables whose cells, columns and rows are never cut with "...".

    Call it before importing the rest of ``costeff_same``: ``tqdm.auto`` (loaded by
    ``datasets``) warns at import that notebook widgets are missing, which the book, with
    its progress bars off, does not need.
    """
    import time
    import warnings

    _STARTED[:] = [time.perf_counter()]
    warnings.filterwarnings("ignore", message="IProgress not found")
    _one_line_errors()
    import datasets  # imported here, after the filter: the point of setup() is the order
    import pandas as pd
    import transformers

    from costeff_same.plotting import use_style

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    use_style()
    set_matplotlib_formats("svg")  # vector figures on the page
    for option in ("display.max_colwidth", "display.max_columns", "display.max_rows", "display.width"):
        pd.set_option(option, None)  # never a cell, a column or a row cut with "..."


def run_box(chapter: str, profile: str, params: dict[str, Any], computes: str):
    """The box at the top of a chapter's page (``IPython.display.Markdown``, MyST): how long
    the chapter took in this build, measured from :func:`setup` to this call (minutes), how
    many cached stages it computed and how many it read (counted from the progress file of
    the run, :mod:`costeff_same.foundations.progress`, worker processes included), the
    commands that re-run it with other parameters, and its downloads.

    Args:
        chapter: the chapter's name (``01_multi_exit``).
        profile: the profile the chapter ran under (``default``).
        params: the run's parameters, the profile's values with explicit ones on top.
        computes: what the chapter computes, one clause (``fine-tunes the victims ...``).

    Raises:
        ConfigError: for an unknown chapter (the accepted ones are listed).
    """
    import time

    from IPython.display import Markdown

    from costeff_same.parameters import schema

    if chapter not in chapters():
        raise ConfigError(f"unknown chapter {chapter!r}; accepted: {', '.join(chapters())}")
    minutes = (time.perf_counter() - _STARTED[0]) / 60 if _STARTED else float("nan")
    stages = _stage_counts()
    others = [n for n in schema(chapter).all_params if n != "profile"]
    if others:
        example = "seed" if "seed" in others else others[0]
        value = params.get(example, 0)
        value = value + 1 if isinstance(value, int) and not isinstance(value, bool) else value
        cli, pm, said = f" --set {example}={value}", f" -p {example} {value}", f"here `{example}={value}`; "
    else:
        cli = pm = said = ""
    counted = (f" ({_count(stages['computed'], 'stage')} computed, {stages['read']} read from the cache)"
               if stages else "")
    recorded = _recorded_minutes() if stages and not stages["computed"] else None
    if recorded is not None:
        counted += (f"; computed, the results it read took {recorded:.1f} min (the compute time recorded with "
                    "each cached result)")
    return Markdown(f"""
:::{{admonition}} This chapter
:class: tip
This chapter {computes}. **In this build** it ran in {minutes:.1f} min under the `{profile}`
profile{counted}.
Re-run it with other parameters ({said}{{doc}}`reproduce` lists them all):

```bash
.venv/bin/costeff-same notebooks --chapter {chapter} \\
  --profile {profile}{cli}
.venv/bin/jupytext --to ipynb -o - notebooks/{chapter}.py \\
  | .venv/bin/papermill - out.ipynb -k python3 \\
    -p profile {profile}{pm}
```

Download this page as {{download}}`the executed notebook <{chapter}.ipynb>` or its
{{download}}`Jupytext source <../notebooks/{chapter}.py>`.
:::
""")


def _count(n: int, noun: str) -> str:
    """``"1 stage"``, ``"3 stages"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def glue_figure(name: str, fig) -> None:
    """Glue ``fig`` (a matplotlib figure) under ``name`` for a ``{glue:figure}`` directive
    (numbered, with caption and alt text) and close it, so the cell that made it shows nothing."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


def _progress_file() -> Path | None:
    """This run's progress file (:data:`PROGRESS_ENV`), or None without one."""
    path = os.environ.get(PROGRESS_ENV)
    return Path(path) if path and Path(path).is_file() else None


def _stage_counts() -> dict[str, int] | None:
    """:func:`~costeff_same.foundations.progress.stage_counts` of this run's progress file, or None without one."""
    path = _progress_file()
    return stage_counts(path) if path is not None else None


def _recorded_minutes() -> float | None:
    """The compute minutes recorded in the provenance of the cache entries this run read (its
    progress file's read stages), or None when there is none to read."""
    path = _progress_file()
    if path is None:
        return None
    seconds = []
    for name in read_entries(path):
        info = results_dir() / name / "provenance.json"
        if info.is_file():
            seconds.append(json.loads(info.read_text()).get("seconds") or 0.0)
    return sum(seconds) / 60 if seconds else None


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors that say what is wrong with an input or the disk (shown in one line, without a traceback)."""
    from costeff_same.attacks.resources import ResourceError
    from costeff_same.core.backbones import BackboneError
    from costeff_same.core.data import DataError
    from costeff_same.engine.trainer import TrainingDiverged
    from costeff_same.foundations.integrity import IntegrityError
    from costeff_same.foundations.storage import StorageError

    return ConfigError, DataError, BackboneError, IntegrityError, StorageError, TrainingDiverged, ResourceError


def _one_line_errors() -> None:
    """In a notebook kernel, show :func:`user_errors` as one line (``ConfigError: epochs='x' must be
    an integer``) instead of a traceback; every other error keeps its traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def one_line(shell, etype, value, tb, tb_offset=None):
        stb = [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, stb)  # IPython 9 leaves the display to the handler
        return stb

    shell.set_custom_exc(user_errors(), one_line)


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised an error; the partial notebook is kept in ``_build/failed/``."""


def chapters() -> list[str]:
    """Chapter names (``01_multi_exit`` ...) in reading order."""
    return sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))


def chapter_overrides(todo: list[str], overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{chapter: its share of overrides}``: each chapter of ``todo`` gets the overrides it
    knows (``--set epochs=1`` reaches the chapters that train).

    Raises:
        ConfigError: for an override that no chapter of ``todo`` knows (the accepted names are listed).
    """
    from costeff_same.parameters import schema

    names = {chapter: set(schema(chapter).all_params) for chapter in todo}
    unknown = sorted(k for k in overrides if not any(k in known for known in names.values()))
    if unknown:
        accepted = sorted(set().union(*names.values()))
        raise ConfigError(f"unknown parameter(s) {unknown} for {', '.join(todo)}; accepted: {', '.join(accepted)}")
    return {chapter: {k: v for k, v in overrides.items() if k in names[chapter]} for chapter in todo}


def to_ipynb(chapter: str, path: Path) -> None:
    """Write the ``.ipynb`` form of ``notebooks/<chapter>.py`` to ``path``."""
    import jupytext

    notebook = jupytext.read(NOTEBOOKS_DIR / f"{chapter}.py")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(notebook, path, fmt="ipynb")


def _ipc_kernel_manager() -> type:
    """The kernel manager class of a chapter's kernel: Unix-domain sockets (the ``ipc``
    transport) instead of TCP on localhost, so no port is opened and ipykernel has no
    unencrypted TCP connection to warn about."""
    from jupyter_client import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    return IPCKernelManager


def _remove_injected_parameters(path: Path) -> None:
    """Tag the cell papermill injects (``injected-parameters``) ``remove-cell``: the page shows
    the run box with the run's parameters instead of a second parameters cell."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(notebook, path)


def run_stages_first(todo: list[str], profile: str, overrides: dict[str, dict[str, Any]],
                     progress_to: IO[str] | None = None) -> None:
    """Every stage of the chapters ``todo`` on one graph, before their notebooks run
    (:func:`costeff_same.study.chapters_graph`): the stages of several chapters run side by
    side, so no core waits at a chapter's end, and each chapter then reads its stages from the
    cache. A chapter's record that times inference runs alone. Chapters without stages (the
    reproduction page) are left to their notebooks. Progress goes to ``progress_to`` (default:
    standard output) as :func:`run_chapter`'s does.

    Raises:
        ConfigError: for a parameter a chapter does not know or of the wrong type.
        Exception: the first error a stage raised (the stages already finished stay cached).
    """
    from costeff_same.engine.parallel import run_graph
    from costeff_same.study import RUNNERS, chapters_graph

    params = {c: chapter_params(c, profile, overrides.get(c)) for c in todo if c in RUNNERS}
    if not params:
        return
    with tempfile.TemporaryDirectory() as tmp, relayed_progress(Path(tmp), progress_to):
        run_graph(chapters_graph(params))


def chapter_params(chapter: str, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``chapter``'s parameters under ``profile`` with ``overrides``, checked against its schema.

    Raises:
        ConfigError: for a parameter the chapter does not know or of the wrong type.
    """
    from costeff_same.parameters import schema

    params = {**load_profile(profile).get(chapter, {}), **(overrides or {})}
    schema(chapter).complete(params)  # unknown names and wrong types are refused here, at once
    return params


@contextmanager
def relayed_progress(folder: Path, target: IO[str] | None = None) -> Iterator[None]:
    """Name a progress file in ``folder`` for this process and the ones it starts
    (:data:`PROGRESS_ENV`) and copy it to ``target`` while the block runs (:class:`Relay`)."""
    os.environ[PROGRESS_ENV] = str(folder / "progress.txt")
    try:
        with Relay(Path(os.environ[PROGRESS_ENV]), target=target):
            yield
    finally:
        os.environ.pop(PROGRESS_ENV, None)


def run_chapter(chapter: str, profile: str, parameters: dict[str, Any] | None = None,
                output_dir: Path = BOOK_DIR, progress_to: IO[str] | None = None) -> Path:
    """Execute one chapter under ``profile`` (plus ``parameters`` overrides) with papermill.

    While it runs, the kernel's progress (:mod:`costeff_same.foundations.progress`: a line
    per stage read or computed, with its time, and a bar with rate and time left for the
    stage being computed) is copied to ``progress_to`` (default: standard output), never
    into the notebook.

    Raises:
        ConfigError: for an unknown chapter (the accepted ones are listed) or profile, or a
            parameter the chapter does not know or of the wrong type (before anything runs).
        ChapterFailed: when a cell fails, with the cell's error in one line; the partial
            notebook is written to ``_build/failed/<chapter>.ipynb`` and ``book/`` keeps the
            chapter it had.
    """
    import papermill

    known = chapters()
    if chapter not in known:
        raise ConfigError(f"unknown chapter {chapter!r}; accepted: {', '.join(known)}")
    params = {**chapter_params(chapter, profile, parameters), "profile": profile}
    output = output_dir / f"{chapter}.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        source, executed = Path(tmp) / f"{chapter}.ipynb", Path(tmp) / f"{chapter}.out.ipynb"
        to_ipynb(chapter, source)
        env_before = os.getcwd()
        os.chdir(REPO_DIR)
        try:
            with relayed_progress(Path(tmp), progress_to):
                papermill.execute_notebook(str(source), str(executed), parameters=params, kernel_name="python3",
                                           progress_bar=False, cwd=str(REPO_DIR),
                                           kernel_manager_class=_ipc_kernel_manager())
        except papermill.PapermillExecutionError as err:
            FAILED_DIR.mkdir(parents=True, exist_ok=True)
            failed = FAILED_DIR / f"{chapter}.ipynb"
            shutil.copyfile(executed, failed)
            raise ChapterFailed(f"{chapter} failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
                                f"(the failed notebook: {failed})") from None
        finally:
            os.chdir(env_before)
        _remove_injected_parameters(executed)
        with atomic(output) as tmp_output:
            shutil.copyfile(executed, tmp_output)
    return output
