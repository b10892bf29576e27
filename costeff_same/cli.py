"""``costeff-same``: the command line, mirroring the experiments.

    costeff-same train    --profile default [--victim entropy|patience] [--set key=value ...]
    costeff-same evaluate --profile default [--set key=value ...]
    costeff-same summary  --profile default [--json]
    costeff-same notebooks --profile smoke [--chapter 01_multi_exit]
    costeff-same attack   --recipe pwws|textfooler|deepwordbug|same --profile default
                          [--victim entropy|patience] [--set key=value ...]
    costeff-same parameters [--chapter 01_multi_exit] [--write]
    costeff-same data wordnet [--source auto|nltk|debian]
    costeff-same compress --profile default [--model costeff|ta|static_h2|...] [--set key=value ...]
    costeff-same study    --profile default [--seeds 0 1 2] [--chapters 01_multi_exit ...]
    costeff-same check-site [--html _build/html] [--page book/methods.html ...] [--screenshots DIR]

``--set`` overrides one notebook parameter of the profile (values are read as YAML, so
``--set epochs=1 --set task=imdb`` work). Every command that runs stages takes the run
settings (:mod:`costeff_same.foundations.runtime`): ``--device auto|cpu|cuda``,
``--executor local|dask``, ``--scheduler tcp://HOST:PORT`` (join a running Dask cluster) and
``--workers N`` (stages side by side); they change where and how fast stages run, never
what a stage computes on a CPU. Errors in input (and a training run that
diverges) are reported in one line naming the bad value and the accepted ones, with exit
status 2; a file that cannot be written or read (a full disk, a read-only folder) in one
line naming the path and the cause, with exit status 1; an interrupted run with 130 (its
finished stages are cached, the running one resumes from its last checkpoint). ``check-site``
prints one line per problem it finds in the built book and exits with 1 if there is any.

Each command imports the library inside its function, so that ``--help`` and a refused
argument answer at once instead of after loading torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

import yaml

from costeff_same.foundations import runtime
from costeff_same.foundations.config import PROFILES, ConfigError, load_profile

#: a number in exponent notation without a dot (``5e-5``), which YAML 1.1 reads as a string
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs as ``{key: value}``, each value read as YAML (``5e-5`` as a float).

    Raises:
        ConfigError: for a pair without ``=``, an empty key, or a value that is not valid YAML
            (or asks for a Python object: only plain YAML is read).
    """
    out = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise ConfigError(f"--set {pair!r} must look like key=value")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = float(value) if _EXPONENT_NUMBER.fullmatch(value.strip()) else yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or type(err).__name__
            raise ConfigError(f"--set {pair!r}: the value is not plain YAML ({problem}); "
                              "accepted: a number, a string, true/false, null or a [list]") from None
    return out


def _print_json(data: Any) -> None:
    """``data`` as strict JSON on stdout: an undefined or infinite figure is ``null``, never a bare NaN."""
    from costeff_same.engine.results import no_nan

    print(json.dumps(no_nan(data), indent=2, sort_keys=True, allow_nan=False))


def _chapter1_params(args) -> dict[str, Any]:
    return {**load_profile(args.profile)["01_multi_exit"], **_overrides(args.set)}


def cmd_train(args) -> int:
    from costeff_same.chapters.multi_exit import multi_exit_config
    from costeff_same.foundations.registry import VICTIMS
    from costeff_same.zoo import trained_model

    cfg = multi_exit_config(**_chapter1_params(args))
    for name in [args.victim] if args.victim else VICTIMS:
        _, record = trained_model(cfg.victim(name))
        print(f"{name}: trained ({record['_entry']})")
    return 0


def cmd_evaluate(args) -> int:
    from costeff_same.chapters.multi_exit import multi_exit_config, multi_exit_summary, run_multi_exit

    record = run_multi_exit(multi_exit_config(**_chapter1_params(args)))
    _print_json(multi_exit_summary(record))
    return 0


def cmd_summary(args) -> int:
    from costeff_same.summary import summary

    data = summary(args.profile)
    if args.json:
        _print_json(data)
        return 0
    for section, values in data.items():
        if section == "profile":
            print(f"profile: {values}")
            continue
        if section == "reproduction":
            print("[reproduction] " + ", ".join(f"{n} {v}" for v, n in values["counts"].items()))
            for claim in values["claims"]:
                print(f"  {claim['key']}: {claim['verdict']} (ours: {claim['ours_text']})")
            continue
        print(f"[{section}] {values.get('status', '')}")
        for key, value in values.items():
            if key != "status" and not isinstance(value, (dict, list)):
                print(f"  {key}: {value}")
    return 0


def cmd_notebooks(args) -> int:
    from costeff_same.notebooks import ChapterFailed, chapter_overrides, chapters, run_chapter, run_stages_first

    todo = [args.chapter] if args.chapter else chapters()
    overrides = chapter_overrides(todo, _overrides(args.set))
    started = time.perf_counter()
    print(f"[stages] every stage of {len(todo)} chapter(s) under profile {args.profile} on one graph ...", flush=True)
    try:
        run_stages_first(todo, args.profile, overrides)
        print(f"  -> done ({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
    except ConfigError as err:          # a bad parameter: nothing ran
        print(f"costeff-same notebooks: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:            # a stage failed: its chapter's notebook shows it, in its cell
        print(f"  -> a stage failed ({_one_line(err)}); the chapters run one by one and show where", flush=True)
    for i, chapter in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] running {chapter} under profile {args.profile} ...", flush=True)
        t0 = time.perf_counter()
        try:
            path = run_chapter(chapter, args.profile, overrides[chapter])
        except ChapterFailed as err:
            print(f"costeff-same notebooks: error: {_one_line(err)}", file=sys.stderr)
            return 1
        print(f"  -> {path} ({(time.perf_counter() - t0) / 60:.1f} min; "
              f"{(time.perf_counter() - started) / 60:.1f} min so far)", flush=True)
    return 0


def cmd_attack(args) -> int:
    from costeff_same.attacks.resources import ResourceError
    from costeff_same.attacks.units import run_recipe_unit
    from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config, unit_row
    from costeff_same.chapters.same import cli_rows, same_config
    from costeff_same.victims import run_multi_exit

    if args.recipe == "same":  # chapter 4's slowdown attack: its own profile section (04_same)
        _print_json(cli_rows(args.profile, _overrides(args.set), args.victim))
        return 0
    chapter = "04_same" if args.recipe == "waffle" else "03_accuracy_attacks"  # WAFFLE runs beside SAME
    params = {**load_profile(args.profile).get(chapter, {}), **_overrides(args.set)}
    cfg = same_config(**params) if args.recipe == "waffle" else accuracy_attacks_config(**params)
    chapter1 = run_multi_exit(cfg.multi_exit)
    rows = []
    for name in [args.victim] if args.victim else cfg.victims:
        value = chapter1["victims"][name]["operating_point"]["value"]
        units = [cfg.waffle_unit(name, value)] if args.recipe == "waffle" else cfg.units(name, args.recipe, value)
        for unit_cfg in units:
            try:
                unit = run_recipe_unit(unit_cfg)
            except ResourceError as err:
                print(f"costeff-same attack: error: {err}", file=sys.stderr)
                return 2
            rows.append(unit_row(name, value, unit))
    _print_json(rows)
    return 0


def cmd_parameters(args) -> int:
    from costeff_same.parameters import SCHEMAS, schema, sync_parameters_cell

    for chapter in [args.chapter] if args.chapter else SCHEMAS:
        if args.write:
            print(f"{chapter}: {'rewritten' if sync_parameters_cell(chapter) else 'up to date'}")
        else:
            print(f"# {chapter}\n{schema(chapter).parameters_cell()}")
    return 0


def cmd_data(args) -> int:
    from costeff_same.attacks.resources import ResourceError, fetch_wordnet

    try:
        print(f"wordnet: {fetch_wordnet(args.source)}")
    except ResourceError as err:
        print(f"costeff-same data: error: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_compress(args) -> int:
    from costeff_same.chapters.costeff import costeff_config, costeff_summary, run_costeff, train_model

    cfg = costeff_config(**{**load_profile(args.profile).get("02_costeff", {}), **_overrides(args.set)})
    if args.model:
        _print_json(train_model(cfg, args.model))
        return 0
    _print_json(costeff_summary(run_costeff(cfg, args.workers)))
    return 0


def cmd_study(args) -> int:
    from costeff_same.study import run_study

    _print_json(run_study(args.profile, args.seeds, args.chapters))
    return 0


def cmd_check_site(args) -> int:
    from pathlib import Path

    from costeff_same.site_check import check_site, pages

    problems = check_site(Path(args.html), args.page or None,
                          Path(args.screenshots) if args.screenshots else None)
    for problem in problems:
        print(problem)
    checked = len(args.page) if args.page else len(pages(Path(args.html)))
    print(f"{checked} page(s) checked in headless Chromium, network off: {len(problems)} problem(s)",
          file=sys.stderr)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="costeff-same", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn, help_text: str, sets: bool = True, profile: bool = True,
            runs: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if profile:
            p.add_argument("--profile", default="default", choices=PROFILES,
                           help="parameter profile (configs/*.yaml)")
        if sets:
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override one notebook parameter of the profile")
        if runs:
            p.add_argument("--device", choices=runtime.DEVICES, help="where stages compute (default: the "
                           "profile's run.device, else cpu; auto: CUDA when there is one)")
            p.add_argument("--executor", choices=runtime.EXECUTORS, help="what runs independent stages side by "
                           "side: local (a process pool, the default) or dask (a LocalCluster, or --scheduler's)")
            p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="join this running Dask scheduler")
            p.add_argument("--workers", type=int, help="stages side by side, one thread each (default: one per "
                           "core); the results do not depend on it")
        p.set_defaults(fn=fn, runs=runs)
        return p

    add("train", cmd_train, "fine-tune the chapter-1 victims (cached)").add_argument(
        "--victim", choices=("entropy", "patience"), help="train only this victim")
    add("evaluate", cmd_evaluate, "run chapter 1's evaluation and print its summary")
    add("summary", cmd_summary, "summarise every finished chapter from the cache", sets=False,
        runs=False).add_argument("--json", action="store_true", help="machine-readable output")
    add("notebooks", cmd_notebooks, "execute the chapters with papermill into book/").add_argument(
        "--chapter", help="only this chapter (e.g. 01_multi_exit)")
    attack = add("attack", cmd_attack, "run one attack recipe on the chapter-1 victims (cached, chapters 3 and 4)")
    attack.add_argument("--recipe", required=True, choices=("pwws", "textfooler", "deepwordbug", "same", "waffle"),
                        help="the attack recipe (same, waffle: the slowdown attacks of chapter 4)")
    attack.add_argument("--victim", choices=("entropy", "patience"), help="attack only this victim")
    compress = add("compress", cmd_compress, "run COST-EFF, its baselines and ablations (cached, chapter 2)")
    compress.add_argument("--model", help="train (or load) only this model of the comparison, e.g. costeff, ta, "
                                           "static_h2, depth_1")
    params = add("parameters", cmd_parameters, "print (or --write) each notebook's parameters cell from its schema",
                 sets=False, runs=False)
    params.add_argument("--chapter", help="only this chapter (e.g. 01_multi_exit)")
    params.add_argument("--write", action="store_true", help="rewrite the notebooks' cells in place")
    study = add("study", cmd_study, "run every chapter once per seed (each cached) and record the seed study",
                sets=False)
    study.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seeds (default: 0 1 2)")
    study.add_argument("--chapters", nargs="+", default=None, help="only these chapters (e.g. 01_multi_exit)")
    data = add("data", cmd_data, "fetch an offline resource into the project (WordNet 3.0 for PWWS)", sets=False,
               runs=False)
    data.add_argument("resource", choices=("wordnet",), help="the resource")
    data.add_argument("--source", default="auto", choices=("auto", "nltk", "debian"),
                      help="auto: nltk.download when online, else Debian's packages")
    site = add("check-site", cmd_check_site, "open every page of the built book in headless Chromium with the "
               "network off and report what a reader would see broken", sets=False, profile=False, runs=False)
    site.add_argument("--html", default="_build/html", help="the built site (default: _build/html)")
    site.add_argument("--page", action="append", default=[], metavar="PATH",
                      help="only this page, relative to --html (repeatable), e.g. book/methods.html")
    site.add_argument("--screenshots", metavar="DIR", help="save a PNG of each page's first screen here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``costeff-same`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.runs:       # the profile's run settings, then the command line's (children inherit them)
            runtime.apply(args.profile, device=args.device, executor=args.executor, scheduler=args.scheduler,
                          workers=args.workers)
        return args.fn(args)
    except (ConfigError, ValueError) as err:
        print(f"costeff-same {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"costeff-same {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"costeff-same {args.command}: interrupted; finished stages are cached and the running one resumes "
              "from its last checkpoint", file=sys.stderr)
        return 130


def _one_line(err: BaseException) -> str:
    """``err``'s message on one line (a multi-line message is joined with "; ")."""
    text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
