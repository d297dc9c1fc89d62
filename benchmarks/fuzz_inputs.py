"""Fuzz ``desim run`` with thousands of generated inputs and report every failure, not just the first.

Runs the strategies of ``tests/integration/test_fuzz.py`` (valid small systems, mutated files,
random bytes), sharing the examples evenly among them, through the command line in-process. For
every example it records the exit status, the wall time and whether the stall ledger failed to
add up; at the end it prints the count per exit status, the failures (an exit status other than 0
or 2, an unexpected exception, a ledger that does not add up, a refusal that is not one
``desim: error:`` line, a valid input refused, a run over 10 s), the slowest example, and a
reproducer for the first example of each kind of failure. Exits with status 1 if anything failed.

    python benchmarks/fuzz_inputs.py                         # 10,000 examples, a random seed
    python benchmarks/fuzz_inputs.py --examples 2000 --seed 1

Needs the test extra (``pip install -e '.[test]'``): hypothesis, and the test helpers.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
# The strategies and the judge live with the fuzz tests, which import the tests' helpers.
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from test_fuzz import (  # noqa: E402
    HARD_LIMIT_SECONDS,
    STOPPED,
    STRATEGIES,
    TIME_LIMIT_SECONDS,
    FuzzCase,
    Outcome,
    run_case,
)

SHOWN_REPRODUCERS = 5
"""How many kinds of failure get a reproducer printed (the first example of each)."""

PROGRESS_EVERY = 500
INTERRUPTED = 130
"""desim's exit status after Ctrl-C."""


@dataclass(frozen=True)
class Example:
    """One generated input and what the run did with it."""

    case: FuzzCase
    outcome: Outcome


def explore(strategy: st.SearchStrategy[FuzzCase], examples: int, start: int, record: list[Example]) -> None:
    """Run ``examples`` examples of ``strategy`` (seeded by ``start``), appending each to ``record``.

    Only Hypothesis's generate phase runs, with no example database: a failure is recorded, not
    raised, so nothing is shrunk or replayed and every example is a fresh one.
    """

    @seed(start)
    @settings(
        max_examples=examples,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: FuzzCase) -> None:
        outcome = run_case(case)
        if outcome.exit_code == INTERRUPTED:  # Ctrl-C reached desim, which exits 130: stop fuzzing, not just this run
            raise KeyboardInterrupt
        record.append(Example(case, outcome))
        if len(record) % PROGRESS_EVERY == 0:
            print(f"  {len(record)} examples", file=sys.stderr, flush=True)

    one()


def shares(total: int, names: list[str]) -> dict[str, int]:
    """``total`` examples split evenly over ``names``, the remainder to the first ones."""
    base, extra = divmod(total, len(names))
    return {name: base + (index < extra) for index, name in enumerate(names)}


def summarise(record: list[Example], seconds: float) -> bool:
    """Print the counts, the failures and their reproducers; True if nothing failed."""
    outcomes = [example.outcome for example in record]
    strategies = ", ".join(f"{name} {count}" for name, count in Counter(e.case.strategy for e in record).items())
    crashes = sum(outcome.crashed for outcome in outcomes)
    slow = sum(outcome.seconds > TIME_LIMIT_SECONDS for outcome in outcomes)
    print(f"examples            {len(record)} in {seconds:.1f} s ({strategies})")
    for code, count in sorted(Counter(outcome.exit_code for outcome in outcomes).items()):
        label = f"stopped after {HARD_LIMIT_SECONDS} s" if code == STOPPED else f"exit {code}"
        print(f"{label:<19} {count}")
    print(f"crashes             {crashes}  (exit not 0 or 2, an exception, or a ledger that does not add up)")
    print(f"ledger failures     {sum(outcome.ledger_failed for outcome in outcomes)}")
    print(f"{f'over {TIME_LIMIT_SECONDS:g} s':<19} {slow}")
    if record:
        slowest = max(record, key=lambda example: example.outcome.seconds)
        where = f"{slowest.case.strategy}, exit {slowest.outcome.exit_code}"
        print(f"slowest             {slowest.outcome.seconds:.2f} s ({where})")
    failures = [example for example in record if example.outcome.problem is not None]
    print(f"failures            {len(failures)}  (crashes, slow runs, valid inputs refused, malformed error lines)")
    show_failures(failures)
    return not failures


def show_failures(failures: list[Example]) -> None:
    """Print each kind of failure with its count, then a reproducer for the first example of the first few kinds."""
    kinds = Counter(example.outcome.kind for example in failures)
    for kind, count in kinds.most_common():
        print(f"  {count:6}  {kind}")
    firsts: dict[str | None, Example] = {}
    for example in failures:
        firsts.setdefault(example.outcome.kind, example)
    for number, (kind, example) in enumerate(list(firsts.items())[:SHOWN_REPRODUCERS], 1):
        print(f"\n=== failure {number} of {len(firsts)} kinds: {kind} ({example.outcome.seconds:.2f} s) ===")
        print(example.outcome.problem)
        print(_tail(example.outcome.output))
        print(example.case.reproducer())


def _tail(output: str, lines: int = 25) -> str:
    """The last ``lines`` lines of a run's output (where a traceback ends)."""
    return "\n".join(output.splitlines()[-lines:])


def main() -> int:
    """Parse the options, fuzz, print the summary; the exit status is 1 if anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples in all (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="seed for Hypothesis (default: a random one)")
    parser.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help=f"comma-separated strategies to share the examples (default: {','.join(STRATEGIES)})",
    )
    arguments = parser.parse_args()
    names = arguments.strategies.split(",")
    unknown = sorted(set(names) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    start = arguments.seed if arguments.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fuzzing desim run: {arguments.examples} examples ({arguments.strategies}), seed {start}", flush=True)
    record: list[Example] = []
    began = time.perf_counter()
    try:
        for offset, (name, count) in enumerate(shares(arguments.examples, names).items()):
            if count:
                explore(STRATEGIES[name], count, start + offset, record)
    except KeyboardInterrupt:  # the examples run so far are still worth a summary
        print(f"interrupted after {len(record)} examples")
    return 0 if summarise(record, time.perf_counter() - began) else 1


if __name__ == "__main__":
    sys.exit(main())
