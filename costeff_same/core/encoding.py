"""Tokenised splits: one tokenizer call per split, batches with dynamic padding, ordered by length.

:class:`Encoded` holds a split (one column or a sentence pair) as Python lists and pads each
batch to its longest example; :func:`length_sorted_batches` orders examples by length, so a
batch needs little padding (every evaluation, importance pass and victim query batches this
way).
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from costeff_same.core.data import DataError

def tokenize(ds: Dataset, tokenizer, max_length: int) -> tuple[dict[str, list], int]:
    """Tokenise a split without padding (padding is dynamic, per batch).

    The whole split goes to the fast tokenizer in one call (no ``Dataset.map``: the split is
    in memory, and ``map`` would hash the tokenizer for its cache on every call, about
    0.3 s each).

    Args:
        ds: split with ``text`` (and ``text_pair``) and ``label``.
        tokenizer: a fast tokenizer.
        max_length: maximum tokens per example, special tokens included.

    Returns:
        ``({"input_ids", "attention_mask", "token_type_ids", "labels", "length": lists}, truncated)``:
        one entry per example, and the number of examples cut to ``max_length``.

    Raises:
        DataError: when ``max_length`` exceeds the model's limit.
    """
    limit = getattr(tokenizer, "model_max_length", None) or 512
    if not 8 <= max_length <= min(limit, 512):
        raise DataError(f"max_length={max_length} is outside 8..{min(limit, 512)} (the model's limit)")
    columns = ("text", "text_pair") if "text_pair" in ds.column_names else ("text",)
    args = tuple(list(ds[c]) for c in columns)
    if not len(args[0]):
        return {"input_ids": [], "attention_mask": [], "token_type_ids": [], "labels": [], "length": []}, 0
    full = tokenizer(*args, truncation=False)["input_ids"]
    enc = {k: list(v) for k, v in tokenizer(*args, truncation=True, max_length=max_length).items()}
    enc["labels"] = list(ds["label"])
    enc["length"] = [len(ids) for ids in enc["input_ids"]]
    return enc, sum(len(f) > max_length for f in full)


FEATURES = ("input_ids", "attention_mask", "token_type_ids")


def length_sorted_batches(lengths, batch_size: int, indices: np.ndarray | None = None) -> list[np.ndarray]:
    """``indices`` (default: all) ordered by their ``lengths`` (stable), in batches of ``batch_size``.

    Batches of similar lengths need little padding: every evaluation, importance pass and
    victim query of the library batches this way.
    """
    lengths = np.asarray(lengths)
    indices = np.arange(len(lengths)) if indices is None else np.asarray(indices)
    order = indices[np.argsort(lengths[indices], kind="stable")]
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


class Encoded:
    """A tokenised split held as Python lists, batched with dynamic padding.

    Attributes:
        features: one ``{"input_ids", "attention_mask", "token_type_ids"}`` dict per example.
        labels: ``(N,)`` labels.
        lengths: ``(N,)`` tokens per example.
        truncated: number of examples cut to ``max_length``.
    """

    def __init__(self, ds: Dataset, tokenizer, max_length: int):
        encoded, self.truncated = tokenize(ds, tokenizer, max_length)
        columns = {k: encoded[k] for k in FEATURES if k in encoded}
        self.features = [dict(zip(columns, values)) for values in zip(*columns.values())]
        self.labels = np.asarray(encoded["labels"])
        self.lengths = np.asarray(encoded["length"])
        from transformers import DataCollatorWithPadding

        self._collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    @classmethod
    def from_texts(cls, texts: list[str], labels: list[int], tokenizer, max_length: int,
                   pairs: list[str] | None = None) -> Encoded:
        """An :class:`Encoded` of raw ``texts`` (adversarial sentences, say), their second
        sentences ``pairs`` for a sentence-pair task, and their labels.

        Raises:
            DataError: when ``pairs`` is not as long as ``texts``.
        """
        columns = {"text": list(texts), "label": list(labels)}
        if pairs is not None:
            if len(pairs) != len(texts):
                raise DataError(f"{len(pairs)} second sentences for {len(texts)} texts")
            columns["text_pair"] = list(pairs)
        return cls(Dataset.from_dict(columns), tokenizer, max_length)

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, indices) -> dict:
        """Padded tensors ``(len(indices), max_len_in_batch)`` plus ``labels``."""
        import torch

        batch = self._collate([self.features[int(i)] for i in indices])
        dtype = torch.float32 if self.labels.dtype.kind == "f" else torch.long
        batch["labels"] = torch.as_tensor(self.labels[np.asarray(indices, dtype=np.int64)], dtype=dtype)
        return batch

    def eval_batches(self, batch_size: int):
        """Batches over all examples, ordered by length (less padding); yields ``(indices, batch)``."""
        for idx in length_sorted_batches(self.lengths, batch_size):
            yield idx, self.batch(idx)
