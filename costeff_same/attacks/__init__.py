"""Our attack core, in TextAttack's shape (Morris et al., EMNLP 2020 demo).

An attack = goal function + constraints + transformation + search method
(:class:`~costeff_same.attacks.attack.Attack`); a published recipe lives in
``<method>_<author>_<year>.py`` with a ``build(victim)`` that composes them, and every
departure from the paper is commented where it happens.

- :mod:`.victim`: the multi-exit model behind its exit policy, batched queries with
  dynamic padding, query counting and caching, gradient access.
- :mod:`.text`: the text under attack (words, separators, modifications).
- :mod:`.goal_functions`: untargeted classification; SAME's slowdown goal.
- :mod:`.transformations`: WordNet synonyms, embedding neighbours, character edits.
- :mod:`.constraints`: stopwords, no repeats, word length, modification rate, sentence
  similarity, Levenshtein distance, antonyms.
- :mod:`.search`: greedy search with word-importance ranking; beam search.
- recipes: :mod:`.pwws_ren_2019`, :mod:`.textfooler_jin_2019`, :mod:`.deepwordbug_gao_2018`;
  slowdown: :mod:`.same_chen_2023` (SAME) and :mod:`.waffle_coalson_2023` (WAFFLE, chapter 4).
- :mod:`.resources`: WordNet 3.0, the Universal Sentence Encoder port, GloVe and the packaged
  MiniLM; :mod:`.counter_fitting` and :mod:`.word_vectors`: GloVe counter-fitted here
  (TextFooler's word space).
- :mod:`.units` and :mod:`.same_units`: the cached attack units the chapters gather.
- :mod:`.textattack_adapter`: our victim as a TextAttack ``ModelWrapper`` (optional).

The ``textattack`` package is not a dependency: it cannot be installed beside
transformers 5, its stock model wrapper pads every query to 512 tokens, and several of its
recipes download resources at run time.
"""

from __future__ import annotations

import importlib

from costeff_same.foundations.registry import RECIPES as RECIPE_NAMES

#: slowdown recipes run through the recipe unit (chapter 4, beside SAME, which has a unit of its own);
#: named here, not in the registry, because only the attacks' configs check them
SLOWDOWN_RECIPES = ("waffle",)

#: recipe name -> module (each has ``NAME`` and ``build(victim, ...)``)
RECIPES = {
    "pwws": "costeff_same.attacks.pwws_ren_2019",
    "textfooler": "costeff_same.attacks.textfooler_jin_2019",
    "deepwordbug": "costeff_same.attacks.deepwordbug_gao_2018",
    "waffle": "costeff_same.attacks.waffle_coalson_2023",
}
assert tuple(RECIPES) == RECIPE_NAMES + SLOWDOWN_RECIPES, "the registry names every recipe module"


def recipe_module(name: str):
    """The module of recipe ``name``.

    Raises:
        ValueError: for an unknown recipe (the accepted ones are listed).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; accepted: {', '.join(RECIPES)}")
    return importlib.import_module(RECIPES[name])


def build_recipe(name: str, victim, **kwargs):
    """``recipe_module(name).build(victim, **kwargs)``: the recipe's :class:`Attack`."""
    return recipe_module(name).build(victim, **kwargs)
