"""Our victim as a TextAttack ``ModelWrapper`` (optional; needs the ``textattack`` package).

TextAttack (Morris et al., 2020) is not a dependency of this project: it cannot be
installed beside transformers 5 (its ``flair`` dependency pins transformers < 5), its stock
``HuggingFaceModelWrapper`` pads every query to 512 tokens, and several of its recipes
download resources at run time. Where a user has it (for instance installed with
``--no-deps``), this module lets the two ecosystems meet: :class:`TextAttackVictim` wraps a
:class:`~costeff_same.attacks.victim.MultiExitVictim`, so TextAttack's recipes query the
multi-exit model at its exit policy, with dynamic padding and our query cache::

    import textattack
    from costeff_same.attacks.textattack_adapter import TextAttackVictim

    wrapper = TextAttackVictim(victim)
    attack = textattack.attack_recipes.DeepWordBugGao2018.build(wrapper)

Importing this module without TextAttack raises ``ImportError`` with the way to get it.
"""

from __future__ import annotations

import numpy as np

try:
    from textattack.models.wrappers import ModelWrapper
except ImportError as err:  # pragma: no cover - exercised only where TextAttack is absent
    raise ImportError(
        "costeff_same.attacks.textattack_adapter needs the optional textattack package, which cannot be "
        "installed beside transformers 5 with its dependencies; try `pip install --no-deps textattack` "
        "(our own recipes in costeff_same.attacks do not need it)"
    ) from err

from costeff_same.attacks.victim import MultiExitVictim


class TextAttackVictim(ModelWrapper):
    """A TextAttack model wrapper around a multi-exit victim.

    ``__call__`` returns the class probabilities at the exit each text takes (what the
    deployed model serves), ``(N, C)``. ``exit_layers`` gives the exit layers of the last
    call, for slowdown goal functions written against TextAttack.

    Args:
        victim: the multi-exit victim.
    """

    def __init__(self, victim: MultiExitVictim):
        self.victim = victim
        self.model = victim.model
        self.tokenizer = victim.tokenizer
        self.exit_layers = np.zeros(0, dtype=np.int64)

    def __call__(self, text_input_list: list[str]) -> np.ndarray:
        texts = [t if isinstance(t, str) else " ".join(t) for t in text_input_list]
        outputs = self.victim(texts)
        self.exit_layers = np.array([o.exit_layer for o in outputs])
        return np.stack([o.probs for o in outputs])

    def get_grad(self, text_input: str) -> dict:
        """TextAttack's gradient hook: d(loss at the last exit) / d(word embeddings) of one text."""
        import torch

        def loss(exit_logits, exit_layer):
            logits = exit_logits[-1]
            return torch.nn.functional.cross_entropy(logits, logits.argmax(-1))

        out = self.victim.gradients([text_input], loss)
        return {"ids": out.input_ids[0].tolist(), "gradient": out.grad[0].numpy()}

    def _tokenize(self, inputs: list[str]) -> list[list[str]]:
        return [self.tokenizer.convert_ids_to_tokens(self.tokenizer(x, truncation=True,
                                                                    max_length=self.victim.max_length)["input_ids"])
                for x in inputs]
