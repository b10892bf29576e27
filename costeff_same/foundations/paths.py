"""The project's paths, in one place (no ``../data`` relative paths anywhere else).

Every location can be moved with an environment variable, which the tests use to keep
their caches in temporary folders:

- ``COSTEFF_SAME_RESULTS``: the results cache (default ``<repo>/results``).
- ``COSTEFF_SAME_NLTK_DATA``: the project-owned NLTK data folder (default ``<repo>/nltk_data``).
"""

from __future__ import annotations

import os
from pathlib import Path

from costeff_same.foundations.storage import writing

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = PACKAGE_DIR.parent
CONFIGS_DIR = REPO_DIR / "configs"
NOTEBOOKS_DIR = REPO_DIR / "notebooks"
BOOK_DIR = REPO_DIR / "book"
#: where a chapter that failed to run is written (never over the built chapter in ``book/``)
FAILED_DIR = REPO_DIR / "_build" / "failed"


def results_dir() -> Path:
    """Root of the results cache (created on first use).

    Raises:
        StorageError: when the folder cannot be created (a read-only parent, a full disk).
    """
    path = Path(os.environ.get("COSTEFF_SAME_RESULTS", REPO_DIR / "results"))
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def nltk_data_dir() -> Path:
    """The project-owned NLTK data folder (WordNet lives in ``corpora/wordnet``)."""
    return Path(os.environ.get("COSTEFF_SAME_NLTK_DATA", REPO_DIR / "nltk_data"))
