"""Latency of the script evaluators (``conductor_lab.engine.scripting``), in process, no server.

    python bench/scripting.py               # 2000 runs per case
    python bench/scripting.py --runs 10000

Cases:

* INLINE: ``$.a + $.b`` on a 5-key input (JavaScript on the calling thread's QuickJS context; the
  time includes serialising the input, the call into QuickJS and back, and parsing the result);
* INLINE statements: an ``if``/``else`` DO_WHILE-style loop condition through ``eval_bool``;
* jq: ``{k: .a, total: (.a + .b)}`` on the same input (JSON_JQ_TRANSFORM);
* large input: the same two evaluators on a 5,000-item list (``--runs`` / 20 runs).

Each figure is the median and p99 of ``time.perf_counter_ns`` around one call, after a warm-up.
Target (issue): INLINE median < 1 ms.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from conductor_lab.engine import scripting

SMALL_INPUT: dict[str, Any] = {"a": 1, "b": 2, "name": "order-17", "flag": True, "tags": ["x", "y"]}
LARGE_INPUT: dict[str, Any] = {
    "items": [{"id": i, "name": f"item-{i}", "tags": ["a", "b"], "price": i * 1.5} for i in range(5000)]
}
TARGET_INLINE_MEDIAN_MS = 1.0


def percentile(sorted_values: list[int], p: float) -> float:
    """p-th percentile (0..100) of already sorted values, linear interpolation."""
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def measure(fn: Callable[[], Any], runs: int, warmup: int) -> tuple[float, float]:
    """(median, p99) in milliseconds."""
    for _ in range(warmup):
        fn()
    samples: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        start = clock()
        fn()
        samples.append(clock() - start)
    samples.sort()
    return percentile(samples, 50) / 1e6, percentile(samples, 99) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000, help="timed calls per case (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls before each case")
    args = parser.parse_args()
    runs = max(1, args.runs)
    large_runs = max(1, runs // 20)

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cpus, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"python {platform.python_version()}"
    )
    from importlib.metadata import version

    print(f"quickjs-ng {version('quickjs-ng')}, jq {version('jq')}")

    condition = "if ($.loop['iteration'] < 3) { true; } else { false; }"
    loop_input = {"loop": {"iteration": 1}, **SMALL_INPUT}
    cases: list[tuple[str, Callable[[], Any], int]] = [
        ("INLINE  $.a + $.b (5 keys)", lambda: scripting.evaluate("$.a + $.b", SMALL_INPUT), runs),
        ("INLINE  if/else via eval_bool", lambda: scripting.eval_bool(condition, loop_input), runs),
        (
            "jq      {k: .a, total: (.a + .b)}",
            lambda: scripting.jq_transform("{k: .a, total: (.a + .b)}", SMALL_INPUT),
            runs,
        ),
        (
            "INLINE  5,000 items: filter+map",
            lambda: scripting.evaluate("$.items.filter(i => i.id % 2 == 0).length", LARGE_INPUT),
            large_runs,
        ),
        (
            "jq      5,000 items: select+length",
            lambda: scripting.jq_transform("[.items[] | select(.id % 2 == 0)] | length", LARGE_INPUT),
            large_runs,
        ),
    ]
    assert scripting.evaluate("$.a + $.b", SMALL_INPUT) == 3

    print(f"{'case':<36} {'runs':>6} {'median':>10} {'p99':>10}")
    figures: dict[str, tuple[float, float]] = {}
    for name, fn, n in cases:
        median, p99 = measure(fn, n, min(args.warmup, n))
        figures[name] = (median, p99)
        print(f"{name:<36} {n:>6} {median:>7.3f} ms {p99:>7.3f} ms")

    inline_median = figures[cases[0][0]][0]
    verdict = "PASS" if inline_median < TARGET_INLINE_MEDIAN_MS else "MISS"
    print(f"target: INLINE median < {TARGET_INLINE_MEDIAN_MS:.0f} ms -> {inline_median:.3f} ms {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
