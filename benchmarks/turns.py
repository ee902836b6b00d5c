"""Timing two programs iteration by iteration in turns: the child's side of the protocol.

``benchmarks/train_throughput.py --turns N`` starts its own step and PyTorch's
(``benchmarks/torch_reference.py --turns``) in two processes, each warmed up, then asks them in
turn for one timed iteration at a time; each child runs ``take_turns``. Neither framework is
imported here, so neither process loads the other's libraries.
"""
import sys
import time


def take_turns(iteration, what, stdin=sys.stdin, stdout=sys.stdout):
    """The turn-taking protocol of ``train_throughput.py --turns``, for either framework: "TURN
    ready WHAT" once warm (``what``: which code is timed, a path or a version), then one timed
    ``iteration()`` per "go" line read ("TURN seconds" written back) until anything else; returns
    the last iteration's result."""
    print(f"TURN ready {what}", file=stdout, flush=True)
    result = None
    for line in stdin:
        if line.strip() != "go":
            break
        start = time.perf_counter()
        result = iteration()
        print(f"TURN {time.perf_counter() - start:.6f}", file=stdout, flush=True)
    return result
