"""Display names of the book's internal ids: what a page, a figure or a claims table says
instead of ``static_h2``, ``textfooler_cos0.4`` or ``no_dynamic_weights``.

One registry for every layer: the figures (:mod:`costeff_same.plotting`) and the
reproduction summary (:mod:`costeff_same.reproduction`) read their labels here. An id
without a display name is shown as it is.
"""

from __future__ import annotations

#: chapter 1's victims, by exit policy
VICTIM_LABELS = {"entropy": "DeeBERT-style (entropy exit)", "patience": "PABEE-style (patience exit)"}
#: the same, short (inside a table cell)
VICTIM_SHORT = {"entropy": "DeeBERT-style", "patience": "PABEE-style"}

#: the attack recipes (chapter 3's accuracy attacks; SAME, chapters 4 and 5)
RECIPE_LABELS = {"pwws": "PWWS", "textfooler": "TextFooler", "deepwordbug": "DeepWordBug", "same": "SAME",
                 "waffle": "WAFFLE"}
#: the word spaces of TextFooler's swaps (unit keys ``textfooler_<space>``)
WORD_VECTOR_LABELS = {"counter_fitted": "counter-fitted GloVe", "minilm": "MiniLM stand-in"}
#: chapter 6's defences
DEFENCE_LABELS = {"none": "no defence", "sanitiser": "input sanitiser", "guard": "compute guard",
                  "adversarial_training": "adversarial training"}

#: chapter 2's models (the static and depth-truncated baselines are named by :func:`costeff_label`)
COSTEFF_LABELS = {"teacher": "teacher (fine-tuned; DeeBERT exits)", "ta": "teaching assistant (full width)",
                  "costeff": "COST-EFF", "no_ta": "COST-EFF without TA",
                  "final_importance": "COST-EFF, final-exit importance"}

#: chapter 4's SAME variants (the full attack and its ablations)
ABLATION_LABELS = {
    "same": "SAME (ours, fixed)", "uniform_only": "uniform term only (DeepSloth-style)",
    "cross_only": "cross-prediction term only", "no_dynamic_weights": "no dynamic weights",
    "word_only": "word level only", "char_only": "character level only",
    "reference_quirks": "reference quirks on",
    "no_tie_break": "no tie-break (ranked by exit layer alone, as in the paper)",
    "constrained": "constrained (near neighbours, USE similarity)",
    "budget_1": "budget 1 word", "budget_2": "budget 2 words", "budget_3": "budget 3 words",
}


def victim_label(key: str, short: bool = False) -> str:
    """Display name of a victim (``entropy`` -> "DeeBERT-style (entropy exit)", a chapter-2
    model such as ``costeff`` by :func:`costeff_label`); a transfer pair ``entropy->patience``
    becomes "DeeBERT-style -> PABEE-style"."""
    if "->" in key:
        return " -> ".join(victim_label(part, short=True) for part in key.split("->"))
    labels = VICTIM_SHORT if short else VICTIM_LABELS
    return labels[key] if key in labels else costeff_label(key)


def recipe_label(key: str) -> str:
    """Display name of a recipe unit key (``textfooler_minilm_cos0.4`` -> "TextFooler (MiniLM
    stand-in, cos >= 0.4)"; ``textfooler`` alone: the counter-fitted vectors at the paper's 0.5)."""
    recipe, _, rest = key.partition("_")
    if recipe not in RECIPE_LABELS or not rest:
        return RECIPE_LABELS.get(key, key)
    space, _, cos = rest.partition("_cos") if not rest.startswith("cos") else ("", "", rest[3:])
    parts = [WORD_VECTOR_LABELS.get(space, space)] if space else []
    return f"{RECIPE_LABELS[recipe]} ({', '.join(parts + ([f'cos >= {cos}'] if cos else []))})"


def costeff_label(name: str) -> str:
    """Display name of a model of chapter 2's record (``static_h2`` -> "static slender, 2 heads/layer")."""
    if name.startswith("static_h"):
        heads, _, ffn = name[len("static_h"):].partition("_f")
        return f"static slender, {heads} heads/layer" + (f", FFN {ffn}" if ffn else "")
    if name.startswith("depth_"):
        k = int(name[len("depth_"):])
        return f"teacher's first {k} layer{'s' if k > 1 else ''}"
    return COSTEFF_LABELS.get(name, name)


def ablation_label(victim: str, variant: str) -> str:
    """One SAME variant on one victim, for a table cell (``entropy``, ``word_only`` ->
    "DeeBERT-style, word level only")."""
    return f"{victim_label(victim, short=True)}, {ABLATION_LABELS.get(variant, variant)}"
