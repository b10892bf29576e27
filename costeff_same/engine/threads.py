"""One intra-op thread per stage, so that no result depends on the machine's core count.

PyTorch's CPU reductions split their work by thread count: the same stage computed on one
and on two threads differs in the last bits and, after hundreds of training steps, in
accuracy (and an attack that compares logits can then choose another word). Every cached
stage therefore runs on :data:`TASK_THREADS` thread(s) (:func:`costeff_same.engine.results.load_or_run`
computes it inside :func:`one_thread`), and a machine's cores are used by running independent
stages side by side (:mod:`costeff_same.engine.parallel`), not by threading one.

On this project's 2-core machine the second thread buys little anyway: a training step of
the 2-head COST-EFF model took 258 ms on two threads and 271 ms on one, and two one-thread
processes side by side ran at 255 ms a step each.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

#: intra-op threads of every stage (see the module docstring)
TASK_THREADS = 1


@contextmanager
def one_thread():
    """Run the block with :data:`TASK_THREADS` intra-op threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(TASK_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, as ``taskset`` sets it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:      # not on Linux
        return max(1, os.cpu_count() or 1)
