"""The same smoke study on the local pool, on a Dask cluster and serially: wall time and ratios.

Builds one stage graph (:func:`costeff_same.study.study_graph`: every stage of ``--chapters``
under the smoke profile for each of ``--seeds``) and runs it three times, each time into an
empty results folder of its own, so nothing is cached: on the local spawn pool with
``--workers`` processes, on a Dask ``LocalCluster`` of ``--workers`` single-threaded worker
processes, and in this process one stage after another. The order of the three runs
rotates with ``--rounds``, so a load that starts midway hits each. Prints each run's wall
time, the ratios to the serial run, and whether the three computed the same models and
attack results (every stage runs on one thread, so they should, bit for bit).

    .venv/bin/python benchmarks/stage_graph.py --seeds 0 1 --workers 2

The ratios are measured in one run on this machine; they include each executor's start-up
(spawning processes and importing torch in each, starting a Dask cluster).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np

from costeff_same.engine.parallel import run_graph
from costeff_same.study import study_graph

MODES = ("local", "dask", "serial")


def computed(folder: Path) -> str:
    """sha256 of what a run computed, without its clocks: every model's weights and every
    attack unit's per-sentence results."""
    digest = hashlib.sha256()
    for entry in sorted(e for e in folder.iterdir() if e.is_dir() and e.name.split("-")[0] in
                        ("model", "recipe_attack", "same_attack")):
        if entry.name.startswith("model-"):
            files = json.loads((entry / "manifest.json").read_text())["files"]
            digest.update(json.dumps({k: v for k, v in files.items() if k.startswith("work/model/")}).encode())
        else:
            results = json.loads((entry / "result.json").read_text())["results"]
            digest.update(json.dumps([{k: v for k, v in r.items() if k != "seconds"} for r in results],
                                     sort_keys=True).encode())
    return digest.hexdigest()[:16]


def run(mode: str, folder: Path, seeds: list[int], chapters: list[str], workers: int) -> float:
    os.environ["COSTEFF_SAME_RESULTS"] = str(folder)
    os.environ["COSTEFF_SAME_EXECUTOR"] = "dask" if mode == "dask" else "local"
    graph = study_graph("smoke", seeds, chapters)
    started = time.perf_counter()
    run_graph(graph, 1 if mode == "serial" else workers)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--chapters", nargs="+", default=["01_multi_exit", "03_accuracy_attacks"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each mode (the order rotates)")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {m: [] for m in MODES}
    digests: dict[str, set[str]] = {m: set() for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in MODES[r % 3:] + MODES[:r % 3]:
                folder = Path(tmp) / f"{mode}-{r}"
                seconds[mode].append(run(mode, folder, args.seeds, args.chapters, args.workers))
                digests[mode].add(computed(folder))
                print(f"round {r}: {mode:6s} {seconds[mode][-1]:7.1f} s", flush=True)
    serial = float(np.median(seconds["serial"]))
    print(f"\nsmoke study, seeds {args.seeds}, chapters {' '.join(args.chapters)}, {args.workers} workers "
          f"(median of {args.rounds} round(s), each from an empty cache)")
    print(f"{'executor':10s} {'wall (s)':>9s} {'serial / it':>12s}")
    for mode in MODES:
        wall = float(np.median(seconds[mode]))
        print(f"{mode:10s} {wall:9.1f} {serial / wall:12.2f}")
    same = len(set().union(*digests.values())) == 1
    print(f"same models and attack results in every run: {same} ({', '.join(sorted(set().union(*digests.values())))})")


if __name__ == "__main__":
    main()
