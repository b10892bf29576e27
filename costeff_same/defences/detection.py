"""Fitting the compute guard's detector to a victim, and its ROC on clean against SAME texts.

:func:`fit_detector` learns :class:`~costeff_same.defences.guard.TrajectoryDetector` from the
victim's exit logits (clean training sentences against SAME's texts on other training
sentences) and calibrates its threshold on the clean validation inputs that reach the cap
layer; :func:`detector_roc` measures it (``sklearn.metrics``: ROC curve and AUROC, with a
bootstrap interval) on chapter 4's clean sentences against their SAME texts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from costeff_same.core.encoding import Encoded
from costeff_same.core.exits import ExitPolicy, simulate_exits
from costeff_same.core.statistics import bootstrap_interval
from costeff_same.defences.guard import TrajectoryDetector
from costeff_same.engine.results import no_nan
from costeff_same.engine.training import collect_exit_logits


def fit_detector(model, policy: ExitPolicy, attacked: dict[str, Any], clean_texts: list[str], validation: Encoded,
                 tokenizer, max_length: int, cap_layer: int, max_cost: float,
                 seed: int = 0) -> tuple[TrajectoryDetector, dict[str, Any]]:
    """The guard's detector for ``model`` at ``policy``: clean training sentences against SAME's
    texts on other training sentences, its threshold calibrated on the clean validation split
    to cost at most ``max_cost`` of its accuracy (:meth:`TrajectoryDetector.calibrate`).

    Args:
        model: the victim model; ``policy`` its exit policy.
        attacked: a SAME unit's record on training sentences (its attacked sentences' texts are
            the positives).
        clean_texts: clean training sentences (the negatives).
        validation: the encoded validation split (the calibration).
        tokenizer, max_length: how the victim reads a text.
        cap_layer: c; ``max_cost`` the validation accuracy the guard may cost (a fraction).
        seed: seeds the solver.

    Returns:
        The detector and its training record (examples per class, validation inputs reaching c).
    """
    adv_texts = [r["perturbed_text"] for r in attacked["results"] if r["status"] != "skipped"]
    clean = collect_exit_logits(model, Encoded.from_texts(clean_texts, [0] * len(clean_texts), tokenizer, max_length))
    adv = collect_exit_logits(model, Encoded.from_texts(adv_texts, [0] * len(adv_texts), tokenizer, max_length))
    detector = TrajectoryDetector.fit(clean, adv, cap_layer, seed=seed)
    val_logits = collect_exit_logits(model, validation)
    decision = simulate_exits(val_logits, policy)                # the victim's exits, from the same forward
    val_layers, val_preds = decision.exit_layer, decision.predictions
    detector.calibrate(val_logits, validation.labels, val_layers, val_preds, max_cost)
    flagged = (val_layers >= cap_layer) & detector.flags(val_logits)
    return detector, {"clean_examples": len(clean_texts), "attack_examples": len(adv_texts),
                      "validation_reaching_cap": int((val_layers >= cap_layer).sum()),
                      "validation_flagged": int(flagged.sum()), "threshold": detector.threshold}


def detector_roc(detector: TrajectoryDetector, model, clean: Encoded, adv: Encoded, attacked: np.ndarray,
                 seed: int = 0) -> dict[str, Any]:
    """ROC curve and AUROC (with its bootstrap interval) of the detector: chapter 4's clean
    sentences (negatives) against their SAME texts (positives), the attacked sentences only."""
    scores = np.r_[detector.logit(collect_exit_logits(model, clean)[:, attacked]).numpy(),
                   detector.logit(collect_exit_logits(model, adv)[:, attacked]).numpy()]
    truth = np.r_[np.zeros(int(attacked.sum())), np.ones(int(attacked.sum()))]
    fpr, tpr, _ = roc_curve(truth, scores)
    interval = bootstrap_interval([scores, truth], lambda s, t: roc_auc_score(t, s) if 0 < t.mean() < 1
                                  else np.nan, vectorized=False, seed=seed)
    at_threshold = {"tpr": float(np.mean(scores[truth == 1] > detector.threshold)),
                    "fpr": float(np.mean(scores[truth == 0] > detector.threshold))}
    return {"auroc": float(roc_auc_score(truth, scores)), "auroc_interval": no_nan(interval),
            "fpr": fpr.tolist(), "tpr": tpr.tolist(), "at_threshold": at_threshold}
