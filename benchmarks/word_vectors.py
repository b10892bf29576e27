"""TextFooler's word spaces and sentence encoders: build and load time, and speed, in one run.

Builds the counter-fitted vectors (:mod:`costeff_same.attacks.word_vectors`) into an empty
results folder of their own, so nothing is cached, then loads the cached entry ``--loads``
times in fresh processes (each import included, as a chapter pays it), and times the two
sentence encoders (the Universal Sentence Encoder port and MiniLM) on the same chapter-3
sentences, one thread each. Prints the seconds of each and the ratios, measured in one run.

    .venv/bin/python benchmarks/word_vectors.py --loads 3 --sentences 200
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LOAD = ("import time; t = time.perf_counter(); "
        "from costeff_same.attacks.word_vectors import counter_fitted_vectors; "
        "w, v = counter_fitted_vectors(); print(time.perf_counter() - t, len(w))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=3, help="cached loads, each in a fresh process")
    parser.add_argument("--sentences", type=int, default=200, help="sentences each encoder embeds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "COSTEFF_SAME_RESULTS": folder}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", LOAD], env=env, check=True, capture_output=True)
        build = time.perf_counter() - started
        loads = [float(subprocess.run([sys.executable, "-c", LOAD], env=env, check=True, capture_output=True,
                                      text=True).stdout.split()[0]) for _ in range(args.loads)]
    print(f"counter-fitted vectors: built (cold, with imports) in {build:.1f} s; cached load "
          f"{min(loads):.2f}-{max(loads):.2f} s over {len(loads)} fresh processes")

    import torch

    from costeff_same.attacks.constraints import sentence_encoder
    from costeff_same.attacks.sentences import attack_sentences
    from costeff_same.foundations.config import DataConfig

    torch.set_num_threads(1)
    texts = attack_sentences(DataConfig(), args.sentences, 0, who="the benchmark")[0]
    seconds = {}
    for name in ("use", "minilm"):
        encoder = sentence_encoder(name)
        encoder(["warm up"])
        started = time.perf_counter()
        encoder(texts)
        seconds[name] = time.perf_counter() - started
        print(f"sentence encoder {name}: {len(texts)} sentences in {seconds[name]:.2f} s "
              f"({1000 * seconds[name] / len(texts):.1f} ms a sentence, one thread)")
    print(f"ratio minilm / use: {seconds['minilm'] / seconds['use']:.2f}")


if __name__ == "__main__":
    main()
