"""The reproduction summary: one row per claim of the papers, judged from the chapters' results.

Each :class:`Claim` names its source (paper and place), states the claim in one line with
the paper's figure and how our setting differs, and reads our figure and its verdict from
``costeff-same summary --json``'s sections by the rules of :mod:`costeff_same.verdicts`
(stated on the book's methods page and on the summary chapter):

- a figure ("about 80%", "keeps 96.5%", "1/8 of the parameters") is judged by
  :func:`~costeff_same.verdicts.quantitative` with the tolerance and the side the claim states;
- a comparison ("beats", "at least as accurate", "does not significantly reduce") by
  :func:`~costeff_same.verdicts.directional` over our verdict in every setting (victims,
  budgets, ablations).

A claim whose chapter has not run is ``not testable here``. Given the per-seed summaries of
a seed study, each row also says on how many seeds the verdict is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from costeff_same import verdicts
from costeff_same.core.statistics import Interval
from costeff_same.foundations.names import ablation_label, costeff_label, victim_label
from costeff_same.foundations.schema import Schema

#: the reproduction summary's notebook parameters: only ``profile`` (it reads the others' results)
REPRODUCTION_SCHEMA = Schema("99_reproduction", {})

#: ``(our figure or None, a short text of it, the verdict)``
Judgement = tuple[Interval | None, str, str]
Section = dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, and how this book tests it."""

    key: str
    chapter: str          # the summary section it reads
    source: str           # paper, and where
    claim: str            # the claim in one line
    paper: str            # the paper's figure, in words
    setting: str          # how our setting differs ({backbone} and {task}: the run's)
    judge: Callable[[Section], Judgement]
    paper_value: float | None = None   # the paper's figure as a number, for a quantitative claim


def _exact(value: float | None) -> Interval | None:
    """A figure without sampling error (a parameter count) as a degenerate interval."""
    return None if value is None else {"estimate": value, "low": value, "high": value}


def _quantitative(paper: float, tolerance: float, read: Callable[[Section], Interval | None],
                  null: float | None = 0.0, side: str = "about") -> Callable[[Section], Judgement]:
    def judge(section: Section) -> Judgement:
        ours = read(section)
        return (ours, verdicts.interval_text(ours, percent=True),
                verdicts.quantitative(paper, ours, tolerance, null, side))
    return judge


def _directional(accepted: tuple[str, ...], read: Callable[[Section], list[tuple[str, Any]]],
                 figure: Callable[[Section], Interval | None] = lambda s: None) -> Callable[[Section], Judgement]:
    def judge(section: Section) -> Judgement:
        found = [(name, v) for name, v in read(section) if v is not None]
        ours = figure(section)
        text = "; ".join(f"{name}: {v}" for name, v in found) or "n/a"
        if verdicts.finite(ours):
            text = f"{verdicts.interval_text(ours, percent=True)} ({text})"
        return ours, text, verdicts.directional(accepted, [v for _, v in found])
    return judge


def _difference(test: dict[str, Any] | None) -> Interval | None:
    return None if not test else test.get("difference")


def _ablations(section: Section, variants: tuple[str, ...] | None, leave_out: tuple[str, ...] = ()) -> list:
    return [(ablation_label(victim, variant), t["verdict"])
            for victim, tests in section.get("ablation_tests", {}).items() for variant, t in tests.items()
            if (variants is None or variant in variants) and variant not in leave_out]


COSTEFF_SETTING = "a {backbone} teacher on {task} (the paper: BERT-base on GLUE)"
SAME_SETTING = ("{backbone} victims on {task} (the paper: BERT-base and others on GLUE); the same seeded, "
                "label-balanced sentences")
MULTI_EXIT_SETTING = "{backbone} on {task} (the paper: BERT-base on GLUE)"
SAME_VS_COSTEFF_SETTING = ("chapter 2's {backbone} slender models on {task}, each at its validation operating point; "
                           "the sentences of chapters 3 and 4")


def _slender_attack(attack: str, key: str) -> Callable[[Section], list[tuple[str, Any]]]:
    """Each slender victim's verdict of :func:`~costeff_same.verdicts.shift` on ``attack``'s interval ``key``."""
    def read(section: Section) -> list[tuple[str, Any]]:
        out = []
        for name, v in section.get("victims", {}).items():
            interval = ((v["attacks"].get(attack) or {}).get("intervals") or {}).get(key)
            if v["role"] == "slender" and verdicts.finite(interval):
                out.append((victim_label(name, short=True), verdicts.shift(interval)))
        return out
    return read

CLAIMS: tuple[Claim, ...] = (
    Claim("costeff_retention", "costeff", "Shen et al., 2022 (COST-EFF), abstract",
          "COST-EFF keeps about 96.5% of its teacher's task performance", "96.5%", COSTEFF_SETTING,
          _quantitative(0.965, 0.01, lambda s: s["intervals"]["retention"], None, "at_least"), 0.965),
    Claim("costeff_parameters", "costeff", "Shen et al., 2022 (COST-EFF), abstract",
          "with about 1/8 of the parameters (a single-exit teacher counted)", "12.5%",
          COSTEFF_SETTING + "; the fraction is set by the target width", _quantitative(
              1 / 8, 0.025, lambda s: _exact(s["parameter_fraction"]), None, "at_most"), 1 / 8),
    Claim("costeff_flops", "costeff", "Shen et al., 2022 (COST-EFF), abstract",
          "and about 1/19 of the FLOPs (last exit, measured per example)", "5.3%", COSTEFF_SETTING,
          _quantitative(1 / 19, 0.01, lambda s: _exact(s["flops_fraction"]), None, "at_most"), 1 / 19),
    Claim("costeff_pareto", "costeff", "Shen et al., 2022 (COST-EFF), abstract and section 4",
          "COST-EFF is at least as accurate as static slender and depth-truncated models at equal FLOPs",
          "Pareto-optimal", COSTEFF_SETTING + "; each budget an exact McNemar test, Holm-corrected",
          _directional(("beats", "within noise"),
                       lambda s: [(costeff_label(b["baseline"]), (b["costeff"] or {}).get("verdict"))
                                  for b in s["matched_budgets"]])),
    Claim("ta_helps", "costeff", "Shen et al., 2022 (COST-EFF), section 4 (ablation)",
          "distilling through the teaching assistant beats distilling without it", "TA > no TA", COSTEFF_SETTING,
          _directional(("beats",), lambda s: [("COST-EFF vs no TA", (s["ablation_tests"].get("no_ta") or {})
                                               .get("verdict"))],
                       lambda s: _difference(s["ablation_tests"].get("no_ta")))),
    Claim("calibrated_importance", "costeff", "Shen et al., 2022 (COST-EFF), section 4 (ablation)",
          "importance calibrated over every exit beats last-exit importance", "all exits > last exit",
          COSTEFF_SETTING, _directional(
              ("beats",), lambda s: [("COST-EFF vs final-exit importance",
                                      (s["ablation_tests"].get("final_importance") or {}).get("verdict"))],
              lambda s: _difference(s["ablation_tests"].get("final_importance")))),
    Claim("deebert_saves", "multi_exit", "Xin et al., 2020 (DeeBERT), abstract",
          "entropy early exit saves about 40% of inference (here: of the layers run)", "40%",
          MULTI_EXIT_SETTING + "; the efficiency gain in layers",
          _quantitative(0.40, 0.05, lambda s: s["entropy"]["intervals"].get("efficiency_gain")), 0.40),
    Claim("deebert_small_loss", "multi_exit", "Xin et al., 2020 (DeeBERT), abstract",
          "at a small loss of accuracy: the operating point is within noise of the last exit",
          "minimal degradation", MULTI_EXIT_SETTING + "; the operating point chosen on validation",
          _directional(("within noise", "beats"),
                       lambda s: [("entropy vs last exit", (s["entropy"].get("against_last_exit") or {})
                                   .get("verdict"))],
                       lambda s: _difference(s["entropy"].get("against_last_exit")))),
    Claim("pabee_accuracy", "multi_exit", "Zhou et al., 2020 (PABEE), abstract",
          "patience exit is at least as accurate as entropy exit", "better accuracy",
          MULTI_EXIT_SETTING + "; each at its validation operating point",
          _directional(("beats", "within noise"),
                       lambda s: [("patience vs entropy", (s.get("patience_vs_entropy") or {}).get("verdict"))],
                       lambda s: _difference(s.get("patience_vs_entropy")))),
    Claim("pabee_faster", "multi_exit", "Zhou et al., 2020 (PABEE), abstract",
          "patience exit is faster than entropy exit", "faster",
          MULTI_EXIT_SETTING + "; speedup in layers, L / mean exit layer",
          lambda s: _pabee_faster(s)),
    Claim("same_rq1", "accuracy_attacks", "Chen et al., 2023 (SAME), abstract and RQ1",
          "accuracy attacks do not significantly reduce the efficiency of multi-exit models",
          "no significant reduction", SAME_SETTING + "; Wilcoxon tests of exit-layer shifts, Holm-corrected",
          lambda s: _rq1(s)),
    Claim("same_reduction", "same", "Chen et al., 2023 (SAME), abstract",
          "SAME cuts the efficiency gain by about 80% on average (mean over victims)", "80%", SAME_SETTING,
          _quantitative(0.80, 0.05, lambda s: s.get("mean_efficiency_gain_reduction_interval")), 0.80),
    Claim("same_parts", "same", "Chen et al., 2023 (SAME), section 5 (ablations)",
          "each part of SAME's loss and search adds to the slowdown", "every part helps",
          SAME_SETTING + "; the first sentences of the same selection",
          _directional(("beats",), lambda s: _ablations(s, None, ("uniform_only", "reference_quirks")))),
    Claim("deepsloth_objective", "same", "Chen et al., 2023 (SAME), section 5; Hong et al., 2021 (DeepSloth)",
          "SAME's objective beats DeepSloth's uniform-only objective", "SAME > uniform only", SAME_SETTING,
          _directional(("beats",), lambda s: _ablations(s, ("uniform_only",)))),
    Claim("same_transfer", "same", "this book, chapter 4 (not a claim of the paper)",
          "sentences SAME crafts against one victim also slow the other victim down", "not reported",
          SAME_SETTING, _directional(("increase",), lambda s: [(victim_label(k), t.get("verdict"))
                                                                for k, t in s.get("transfer", {}).items()])),
    Claim("same_on_costeff", "same_vs_costeff", "Chen et al., 2023 (SAME), abstract, asked of COST-EFF (chapter 5)",
          "SAME cuts the efficiency gain of COST-EFF's slender multi-exit model by about 80% too", "80%",
          SAME_VS_COSTEFF_SETTING, _quantitative(0.80, 0.05, lambda s: s["victims"]["costeff"]["attacks"]["same"]
                                                 ["intervals"]["efficiency_gain_reduction"]), 0.80),
    Claim("rq1_on_slender", "same_vs_costeff", "Chen et al., 2023 (SAME), RQ1, asked of COST-EFF (chapter 5)",
          "an accuracy attack (PWWS) does not significantly reduce the slender models' efficiency",
          "no significant reduction", SAME_VS_COSTEFF_SETTING + "; paired bootstrap of the efficiency-gain reduction",
          _directional(("no significant change", "decrease"), _slender_attack("pwws", "efficiency_gain_reduction"))),
    Claim("costeff_cheaper_under_same", "same_vs_costeff", "this book, chapter 5 (a question neither paper asks)",
          "under SAME, COST-EFF still costs fewer FLOPs per example than the static slender model of its width",
          "not reported", SAME_VS_COSTEFF_SETTING + "; paired interval of the FLOPs difference on the same sentences",
          _directional(("beats",), lambda s: [("static - COST-EFF under SAME",
                                               s["deployer"]["same"]["static_minus_costeff_adv_verdict"])],
                       lambda s: s["deployer"]["same"]["saving_survives"])),
    Claim("same_transfers_to_costeff", "same_vs_costeff", "this book, chapter 5 (a question neither paper asks)",
          "SAME's texts crafted on the full-size model also slow the slender models down", "not reported",
          SAME_VS_COSTEFF_SETTING, _directional(("increase",), lambda s: [
              (victim_label(k), t.get("verdict")) for k, t in s.get("transfer", {}).items()
              if k.startswith("entropy->")])),
)


def _pabee_faster(section: Section) -> Judgement:
    difference = (section.get("patience_vs_entropy") or {}).get("speedup_difference")
    found = [verdicts.shift(difference)] if verdicts.finite(difference) else []
    return difference, verdicts.interval_text(difference), verdicts.directional(("increase",), found)


def _rq1(section: Section) -> Judgement:
    rq1 = section.get("rq1") or {}
    text = (f"{rq1.get('significant', 0)} of {rq1.get('pairs', 0)} (victim, recipe) pairs significantly slower"
            + (f" ({rq1['pairs'] - rq1['tested']} with an undefined interval)" if rq1.get("tested") != rq1.get("pairs")
               else ""))
    return None, text, rq1.get("verdict", "not testable here")


def judge(claim: Claim, summary: dict[str, Any]) -> Judgement:
    """``claim`` against ``summary`` (``costeff-same summary --json``): ``not testable here``
    when its chapter has not run or lacks a figure the claim reads."""
    section = summary.get(claim.chapter) or {}
    if section.get("status") != "done":
        return None, "chapter not run", "not testable here"
    try:
        return claim.judge(section)
    except (KeyError, TypeError):
        return None, "figure not in this run", "not testable here"


def claim_rows(summary: dict[str, Any], per_seed: dict[int, dict[str, Any]] | None = None,
               chapter: str | None = None) -> list[dict[str, Any]]:
    """One row per claim (of ``chapter``'s section only, when given): see :func:`reproduction_section`."""
    rows = []
    for claim in CLAIMS:
        if chapter is not None and claim.chapter != chapter:
            continue
        ours, text, verdict = judge(claim, summary)
        seeds = None
        if per_seed:
            by_seed = {str(seed): judge(claim, s)[2] for seed, s in sorted(per_seed.items())}
            seeds = {"n": len(by_seed), "agree": sum(v == verdict for v in by_seed.values()), "verdicts": by_seed}
        section = summary.get(claim.chapter) or {}
        setting = claim.setting.format(backbone=section.get("backbone", "our backbone"),
                                       task=section.get("task", "our task"))
        rows.append({"key": claim.key, "chapter": claim.chapter, "source": claim.source, "claim": claim.claim,
                     "paper": claim.paper, "paper_value": claim.paper_value, "setting": setting, "ours": ours,
                     "ours_text": text,
                     "verdict": verdict, "seeds": seeds})
    return rows


def claims_frame(chapter: str, section: Section) -> pd.DataFrame:
    """A chapter's claims as its closing table (index: claim key; source, claim, paper, ours
    with its 95% interval, verdict), judged from its summary ``section``."""
    rows = claim_rows({chapter: {"status": "done", **section}}, chapter=chapter)
    return pd.DataFrame([{"key": r["key"], "source": r["source"], "claim": r["claim"], "paper": r["paper"],
                          "ours [95% CI]": r["ours_text"], "verdict": r["verdict"]} for r in rows]).set_index("key")


def reproduction_section(summary: dict[str, Any], per_seed: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``reproduction`` section of ``costeff-same summary --json``.

    Args:
        summary: the other sections (seed 0's run).
        per_seed: ``{seed: summary}`` of a seed study (None: one seed).

    Returns:
        ``claims``: one row per :data:`CLAIMS` entry (``key``, ``chapter``, ``source``,
        ``claim``, ``paper``, ``paper_value`` (a number, for a quantitative claim),
        ``setting``, ``ours`` (an interval or None), ``ours_text``, ``verdict``, ``seeds``:
        ``{"n", "agree", "verdicts"}`` or None); ``counts``: claims per verdict.
    """
    rows = claim_rows(summary, per_seed)
    return {"claims": rows, "counts": {v: sum(r["verdict"] == v for r in rows) for v in verdicts.REPRODUCTIONS}}
