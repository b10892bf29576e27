"""Transfer: the sentences an attack crafted against one victim, replayed against another.

An attacker who only has a public model crafts adversarial texts against it and sends them,
unchanged, to the deployed one (SAME's transfer setting, Chen et al., 2023, sec. 5; the
methods page). :func:`replay` runs the stored texts of an attack unit through another
victim's model at its exit policy: it queries no attack, only the target model, once on
the clean and once on the adversarial texts, exactly as the source unit stored them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costeff_same.core.encoding import Encoded
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.metrics import efficiency_change
from costeff_same.core.modeling import MultiExitBertForSequenceClassification
from costeff_same.evaluation import exit_layers


def unit_texts(unit: dict[str, Any], tokenizer, max_length: int) -> tuple[Encoded, Encoded, np.ndarray]:
    """An attack unit's clean and adversarial sentences, encoded, and their labels.

    Args:
        unit: an attack unit's record (its ``results``: one per sentence, with
            ``original_text``, ``perturbed_text`` and ``label``).
        tokenizer: the target's tokenizer.
        max_length: tokens per text (longer ones are truncated).

    Returns:
        ``(clean, adversarial, labels)``: two :class:`Encoded` of ``N`` texts and ``(N,)`` labels.
    """
    labels = [r["label"] for r in unit["results"]]
    clean = Encoded.from_texts([r["original_text"] for r in unit["results"]], labels, tokenizer, max_length)
    adv = Encoded.from_texts([r["perturbed_text"] for r in unit["results"]], labels, tokenizer, max_length)
    return clean, adv, np.asarray(labels)


def replay(source: dict[str, Any], model: MultiExitBertForSequenceClassification, policy: ExitPolicy, tokenizer,
           max_length: int, batch_size: int) -> dict[str, Any]:
    """The sentences of attack unit ``source``, clean and adversarial, run through ``model``.

    Args:
        source: the attack unit's record (the texts it stored).
        model: the target model (eval mode), at exit policy ``policy``.
        tokenizer: the target's tokenizer; ``max_length`` its tokens per text.
        batch_size: texts per forward.

    Returns:
        ``efficiency`` (over all sentences) and ``efficiency_attacked`` (over those the source
        attacked, not skipped): :func:`~costeff_same.core.metrics.efficiency_change` on the
        target; accuracy before and after; ``success_rate_on_target`` (the share of attacked
        sentences that reach the target's last layer: SAME's goal; None with none attacked);
        the per-sentence ``clean_exit_layer``, ``adv_exit_layer`` (1..L), ``clean_prediction``
        and ``adv_prediction``.
    """
    depth = model.num_layers
    clean, adv, labels = unit_texts(source, tokenizer, max_length)
    attacked = np.array([r["status"] != "skipped" for r in source["results"]])
    c_layers, c_preds = exit_layers(model, clean, policy, batch_size)
    a_layers, a_preds = exit_layers(model, adv, policy, batch_size)
    return {
        "efficiency": efficiency_change(c_layers, a_layers, depth),
        "efficiency_attacked": efficiency_change(c_layers[attacked], a_layers[attacked], depth),
        "accuracy_before": float(np.mean(c_preds == labels)), "accuracy_after": float(np.mean(a_preds == labels)),
        "success_rate_on_target": float(np.mean(a_layers[attacked] == depth)) if attacked.any() else None,
        "clean_exit_layer": c_layers.tolist(), "adv_exit_layer": a_layers.tolist(),
        "clean_prediction": c_preds.tolist(), "adv_prediction": a_preds.tolist(),
    }
