"""Run the Jupytext chapters with papermill under a profile, into ``book/``.

Each chapter is a percent-format ``notebooks/NN_name.py`` whose first code cell is tagged
``parameters``. :func:`run_chapter` converts it with ``jupytext``, injects the profile's
parameters for that chapter with ``papermill`` and writes ``book/NN_name.ipynb``, which
Jupyter Book renders with execution off.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from costeff_same.foundations.config import ConfigError, load_profile
from costeff_same.foundations.paths import BOOK_DIR, NOTEBOOKS_DIR, REPO_DIR


def setup() -> None:
    """Quiet set-up for a chapter: no library progress bars in the book, the book's plot style,
    tables whose cells are never cut with "...".

    Call it before importing the rest of ``costeff_same``: ``tqdm.auto`` (loaded by
    ``datasets``) warns at import that notebook widgets are missing, which the book, with
    its progress bars off, does not need.
    """
    import warnings

    warnings.filterwarnings("ignore", message="IProgress not found")
    import datasets  # imported here, after the filter: the point of setup() is the order
    import pandas as pd
    import transformers

    from costeff_same.plotting import use_style

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    use_style()
    pd.set_option("display.max_colwidth", None)


def chapters() -> list[str]:
    """Chapter names (``01_multi_exit`` ...) in reading order."""
    return sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))


def to_ipynb(chapter: str, path: Path) -> None:
    """Write the ``.ipynb`` form of ``notebooks/<chapter>.py`` to ``path``."""
    import jupytext

    notebook = jupytext.read(NOTEBOOKS_DIR / f"{chapter}.py")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(notebook, path, fmt="ipynb")


def run_chapter(chapter: str, profile: str, parameters: dict[str, Any] | None = None,
                output_dir: Path = BOOK_DIR) -> Path:
    """Execute one chapter under ``profile`` (plus ``parameters`` overrides) with papermill.

    Raises:
        ConfigError: for an unknown chapter (the accepted ones are listed) or profile.
        papermill.PapermillExecutionError: when a cell fails (the partial notebook is kept).
    """
    import papermill

    known = chapters()
    if chapter not in known:
        raise ConfigError(f"unknown chapter {chapter!r}; accepted: {', '.join(known)}")
    params = {**load_profile(profile).get(chapter, {}), **(parameters or {})}
    params["profile"] = profile
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{chapter}.ipynb"
        to_ipynb(chapter, source)
        output = output_dir / f"{chapter}.ipynb"
        env_before = os.getcwd()
        os.chdir(REPO_DIR)
        try:
            papermill.execute_notebook(str(source), str(output), parameters=params, kernel_name="python3",
                                       progress_bar=False, cwd=str(REPO_DIR))
        finally:
            os.chdir(env_before)
    return output
