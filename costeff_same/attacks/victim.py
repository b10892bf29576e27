"""The victim: a multi-exit model with an exit policy, queried in batches.

Every query answers, for one text, the **prediction** the deployed model serves, the
**exit layer** (1..L) at which it leaves, the class probabilities at that exit and, on
request, **every exit's probabilities** (SAME, Chen et al., 2023, uses all internal
predictions). Two paths, which agree exactly on exit layers and predictions
(:mod:`costeff_same.core.exits`):

- ``all_exits=False`` (the default): batched early exit; rows leave the batch at their
  exit, so a query costs what the deployed model spends on it;
- ``all_exits=True``: one forward through every layer and exit; the exit decision is
  simulated on the ``(L, C)`` logits.

Queries are batched with **dynamic padding** (each batch is padded to its longest text,
texts are grouped by length), not to 512 tokens as TextAttack's stock
``HuggingFaceModelWrapper`` does (``benchmarks/victim_queries.py`` measures the
difference). Model evaluations are counted; a text asked again is answered from a cache
keyed by (text, path), which stores exactly what the model returned, so the cache never
changes an answer.

Gradient access for gradient-guided attacks (SAME's HotFlip-style swaps): the word-embedding
matrix, :meth:`MultiExitVictim.gradients` (the gradient of a loss over all exits with respect
to the word-embedding rows of the input, computed afresh on every call: nothing accumulates
between calls) and :meth:`MultiExitVictim.word_alignment` (which word-pieces make up each word).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from costeff_same.attacks.text import AttackedText
from costeff_same.core.encoding import length_sorted_batches
from costeff_same.core.exits import ExitPolicy, early_exit_forward, simulate_exits
from costeff_same.core.modeling import MultiExitBertForSequenceClassification


@dataclass(frozen=True)
class VictimOutput:
    """The victim's answer for one text.

    Attributes:
        prediction: the served class (argmax of the exit taken).
        exit_layer: the exit layer taken, 1..L.
        probs: ``(C,)`` softmax of the exit taken.
        exit_probs: ``(L, C)`` softmax of every exit, or None (early-exit path).
    """

    prediction: int
    exit_layer: int
    probs: np.ndarray
    exit_probs: np.ndarray | None = None

    def to_dict(self) -> dict:
        """JSON-able form (probabilities as lists)."""
        return {"prediction": self.prediction, "exit_layer": self.exit_layer, "probs": self.probs.tolist(),
                "exit_probs": None if self.exit_probs is None else self.exit_probs.tolist()}


@dataclass
class GradientOutput:
    """What :meth:`MultiExitVictim.gradients` returns for a batch of texts.

    Attributes:
        input_ids: ``(batch, seq_len)`` token ids (padded).
        attention_mask: ``(batch, seq_len)``.
        grad: ``(batch, seq_len, hidden)`` d loss / d word-embedding row of each token.
        exit_logits: ``(L, batch, C)`` every exit's logits (detached).
        exit_layer: ``(batch,)`` the exit layer each text takes under the policy.
        loss: the scalar loss value.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    grad: torch.Tensor
    exit_logits: torch.Tensor
    exit_layer: np.ndarray
    loss: float


class MultiExitVictim:
    """A multi-exit classifier behind an exit policy, answering text queries in batches.

    Args:
        model: the multi-exit model (put in eval mode here).
        tokenizer: its fast tokenizer.
        policy: the exit policy at the operating point.
        max_length: tokens per text, special tokens included (longer texts are truncated,
            as in training).
        batch_size: texts per forward.
        cache_size: answers kept (least recently used dropped first); 0 disables the cache.
        pad_to: pad every query to this many tokens instead of dynamically (only to measure
            TextAttack's stock behaviour, ``pad_to=512``).

    Raises:
        ValueError: for a non-positive ``batch_size`` or ``max_length``, or ``pad_to`` below
            ``max_length``.
    """

    def __init__(self, model: MultiExitBertForSequenceClassification, tokenizer, policy: ExitPolicy,
                 max_length: int = 64, batch_size: int = 64, cache_size: int = 200_000,
                 pad_to: int | None = None):
        if batch_size < 1 or max_length < 1:
            raise ValueError(f"batch_size={batch_size} and max_length={max_length} must be >= 1")
        if pad_to is not None and pad_to < max_length:
            raise ValueError(f"pad_to={pad_to} must be >= max_length={max_length} (or None: dynamic padding)")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.policy = policy
        self.max_length = max_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.pad_to = pad_to
        self._cache: OrderedDict[tuple[str, bool], VictimOutput] = OrderedDict()
        self.num_queries = 0      # texts evaluated by the model (cache misses)
        self.num_cache_hits = 0   # texts answered from the cache

    # -- facts -----------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        """L, the number of layers (and exits)."""
        return self.model.num_layers

    @property
    def num_labels(self) -> int:
        """C, the number of classes."""
        return self.model.num_labels

    @property
    def unk_token(self) -> str:
        """The tokenizer's unknown-word token (``[UNK]``), for word-importance ranking."""
        return self.tokenizer.unk_token

    @property
    def word_embeddings(self) -> torch.Tensor:
        """``(vocab, hidden)`` the input word-embedding matrix (effective ``U V`` if factorised)."""
        return self.model.bert.embeddings.word_embeddings.weight.detach().cpu()

    # -- queries ---------------------------------------------------------------------------

    def is_cached(self, text: str, all_exits: bool = False) -> bool:
        """True when ``text`` would be answered from the cache (no model evaluation)."""
        return (text, all_exits) in self._cache

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise and pad ``texts`` as one batch: tensors ``(len(texts), seq_len)``."""
        padding = "max_length" if self.pad_to else "longest"
        return self.tokenizer(list(texts), truncation=True, max_length=self.pad_to or self.max_length,
                              padding=padding, return_tensors="pt")

    def __call__(self, texts: Sequence[str | AttackedText], all_exits: bool = False) -> list[VictimOutput]:
        """Answer every text (cached ones from the cache), in order.

        Args:
            texts: ``N`` texts (str or :class:`AttackedText`).
            all_exits: also return every exit's probabilities (a forward through all layers).

        Returns:
            ``N`` :class:`VictimOutput`.
        """
        texts = [t.text if isinstance(t, AttackedText) else t for t in texts]
        answers: dict[str, VictimOutput] = {}
        todo: list[str] = []
        pending: set[str] = set()
        for text in texts:
            key = (text, all_exits)
            if key in self._cache:
                self._cache.move_to_end(key)
                answers[text] = self._cache[key]
                self.num_cache_hits += 1
            elif text not in answers and text not in pending:
                todo.append(text)
                pending.add(text)
        if todo:
            for text, output in zip(todo, self._run(todo, all_exits)):
                answers[text] = output
                if self.cache_size:
                    self._cache[(text, all_exits)] = output
            self.num_queries += len(todo)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [answers[t] for t in texts]

    def _pad(self, encoded: dict[str, list], idx) -> dict[str, torch.Tensor]:
        """Rows ``idx`` of a tokenised (unpadded) batch, padded as :meth:`encode` pads them."""
        rows = {k: [v[i] for i in idx] for k, v in encoded.items()}
        if self.pad_to:
            return self.tokenizer.pad(rows, padding="max_length", max_length=self.pad_to, return_tensors="pt")
        return self.tokenizer.pad(rows, padding="longest", return_tensors="pt")

    @torch.inference_mode()
    def _run(self, texts: list[str], all_exits: bool) -> list[VictimOutput]:
        # one tokenisation of every text (its lengths group the batches), padded batch by batch
        encoded = dict(self.tokenizer(texts, truncation=True, max_length=self.pad_to or self.max_length))
        lengths = [len(ids) for ids in encoded["input_ids"]]
        out: list[VictimOutput | None] = [None] * len(texts)
        for idx in length_sorted_batches(lengths, self.batch_size):
            batch = self._pad(encoded, idx)
            types = batch.get("token_type_ids")
            if all_exits:
                exit_logits = self.model(batch["input_ids"], batch["attention_mask"], types).exit_logits
                decision = simulate_exits(exit_logits, self.policy)
                layers, logits = decision.exit_layer, torch.as_tensor(decision.logits)
                exit_probs = torch.softmax(exit_logits.float(), -1).cpu().numpy()
            else:
                result = early_exit_forward(self.model, batch["input_ids"], batch["attention_mask"],
                                            self.policy, types)
                layers, logits, exit_probs = result.exit_layer.numpy(), result.logits, None
            probs = torch.softmax(logits.float(), -1).numpy()
            for row, i in enumerate(idx):
                out[i] = VictimOutput(
                    prediction=int(probs[row].argmax()), exit_layer=int(layers[row]), probs=probs[row].copy(),
                    exit_probs=None if exit_probs is None else exit_probs[:, row].copy())
        return out

    # -- gradient access (SAME) -------------------------------------------------------------

    def gradients(self, texts: Sequence[str | AttackedText],
                  loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> GradientOutput:
        """Gradient of a loss over all exits with respect to each input token's word embedding.

        The gradient is taken with ``torch.autograd.grad`` on a fresh leaf tensor, so no
        gradient is stored on the model or carried from one call to the next. Does not
        count as queries (it is the white-box access a gradient attack assumes).

        Args:
            texts: the texts (one batch, dynamically padded).
            loss_fn: ``(exit_logits (L, batch, C), exit_layer (batch,) long) -> scalar``.

        Returns:
            :class:`GradientOutput`.
        """
        texts = [t.text if isinstance(t, AttackedText) else t for t in texts]
        batch = self.encode(texts)
        with torch.enable_grad():
            ids = batch["input_ids"].to(self.model.device)
            embeds = self.model.bert.embeddings.word_embeddings(ids).detach().requires_grad_(True)
            exit_logits = self.model(attention_mask=batch["attention_mask"], token_type_ids=batch.get("token_type_ids"),
                                     inputs_embeds=embeds).exit_logits
            decision = simulate_exits(exit_logits.detach(), self.policy)
            loss = loss_fn(exit_logits, torch.as_tensor(decision.exit_layer))
            (grad,) = torch.autograd.grad(loss, embeds)
        return GradientOutput(batch["input_ids"], batch["attention_mask"], grad.detach().cpu(),
                              exit_logits.detach().cpu(), decision.exit_layer, float(loss.detach()))

    def word_alignment(self, text: AttackedText) -> list[list[int]]:
        """Token positions (in :meth:`encode`'s output, ``[CLS]`` = 0) of each word of ``text``.

        A word split into several word-pieces maps to all of them; a word cut off by
        ``max_length`` maps to ``[]``.
        """
        enc = self.tokenizer(text.text, truncation=True, max_length=self.pad_to or self.max_length,
                             return_offsets_mapping=True)
        spans = text.word_spans()
        out: list[list[int]] = [[] for _ in spans]
        j = 0
        for pos, (start, end) in enumerate(enc["offset_mapping"]):
            if start == end:  # special tokens
                continue
            while j < len(spans) and spans[j][1] <= start:
                j += 1
            if j < len(spans) and spans[j][0] < end:
                out[j].append(pos)
        return out
