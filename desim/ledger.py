"""The stall ledger: every stalled cycle charged to where the awaited request spent its time.

A compute unit that waits for memory knows what it waited for: a sequence of *phases*, each
ending at a time, each either a memory request (whose :meth:`~desim.route.Request.timeline`
says where it spent each cycle: a named queue, a service, a latency) or a plain cause (a buffer
out of room, say). :meth:`Ledger.charge` lays the stalled interval over those phases and books
each cycle to the label it falls in. Overlaps are fractional (channels serve at exact
bandwidths), so a stall's cycles are apportioned by largest remainder: the integer charges of
one stall always add up to its length, and so the ledger sums to the stall cycles exactly.
That holds whatever the overlaps come to, float noise included (see :func:`largest_remainder`).

Labels are declared up front, so reports have fixed columns; every component derives its
declared labels from the same tests that choose the labels it charges (see
:meth:`desim.channel.Channel.stall_causes`), so a charge to an undeclared label is a bug in a
component, raised as :class:`UndeclaredCause`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from desim.route import Request

Phase = tuple[float, Union["Request", None], str]
"""``(until, request or None, label)``: until ``until`` the wait was on ``request`` (or on the
plain cause ``label``); time before the request was issued is charged to ``label``."""


_EPSILON = 1e-9
"""Overlaps shorter than this are float noise (segment times are exact fractions of a cycle)."""


class UndeclaredCause(RuntimeError):
    """A component charged a stall to a label it did not declare in ``stall_causes()``."""


class UnexplainedWait(RuntimeError):
    """A request took longer than its timeline accounts for: a hop held it without logging why.

    A component that holds a transfer (to fetch what it lacks, say) must say so, with
    :func:`~desim.route.resume_after`; the ledger never guesses where the time went.
    """


class Ledger:
    """Stall cycles per cause label; labels must be declared up front so reports have fixed columns."""

    def __init__(self, labels: Iterable[str]) -> None:
        self.cycles: dict[str, int] = dict.fromkeys(labels, 0)

    def charge(self, start: int, end: int, phases: Sequence[Phase]) -> dict[str, int]:
        """Book the stall ``[start, end)`` over ``phases`` (in time order, the last ending at ``end``).

        Returns this stall's cycles by label, in the order the labels first held during it.
        """
        if end <= start:
            return {}
        if not phases:
            raise ValueError("a stall must say what it waited on (no phases given)")
        shares: dict[str, float] = {}
        t = float(start)
        for until, request, label in phases:
            if until <= t:
                continue
            upto = min(float(until), float(end))
            if request is None:
                shares[label] = shares.get(label, 0.0) + upto - t
            else:
                _overlay(shares, t, upto, request, label)
            t = upto
            if t >= end:
                break
        if t < end:  # a phase list that stops short: the last cause held to the end
            label = phases[-1][2]
            shares[label] = shares.get(label, 0.0) + end - t
        return self._book(end - start, shares)

    def _book(self, total: int, shares: dict[str, float]) -> dict[str, int]:
        """Split ``total`` cycles in proportion to ``shares``; book the split and return it."""
        cycles = self.cycles
        undeclared = [label for label in shares if label not in cycles]
        if undeclared:
            raise UndeclaredCause(f"stall cause {undeclared[0]!r} was not declared to the ledger")
        split = largest_remainder(total, shares)
        for label, count in split.items():
            cycles[label] += count
        return split


def largest_remainder(total: int, shares: dict[str, float], *, exact: bool = False) -> dict[str, int]:
    """``total`` split into whole parts proportional to ``shares`` (negative ones count as 0).

    Each label gets the floor of its quota ``total * share / sum(shares)``, and what is left goes
    one by one to the largest remainders (ties to the label first in alphabetical order), so the
    parts always add up to ``total``. Floats are fast and exact enough for short stalls; when their
    rounding leaves too much or too little over (stalls of 2^52 cycles and more), the split is
    redone in exact fractions of the same shares.
    """
    if len(shares) == 1:  # the common case: one cause held for the whole stall
        return dict.fromkeys(shares, total)
    if not shares:
        raise ValueError(f"no labels to split {total} cycles among")
    weights = {label: Fraction(max(share, 0.0)) if exact else max(share, 0.0) for label, share in shares.items()}
    whole = sum(weights.values())
    if not whole:  # no time overlapped any label: share alike
        weights = dict.fromkeys(weights, 1)
        whole = len(weights)
    quotas = {label: weight * total / whole for label, weight in weights.items()}
    floors = {label: math.floor(quota) for label, quota in quotas.items()}
    left = total - sum(floors.values())
    if not 0 <= left < len(quotas):
        return largest_remainder(total, shares, exact=True)  # exact quotas sum to total: 0 <= left < n
    by_remainder = sorted(quotas, key=lambda label: (floors[label] - quotas[label], label))
    for label in by_remainder[:left]:
        floors[label] += 1
    return floors


def _overlay(shares: dict[str, float], lo: float, hi: float, request: Request, before_issue: str) -> None:
    """Add to ``shares`` the overlap of ``[lo, hi)`` with each segment of ``request``'s timeline."""
    t = float(request.issued_at)
    if lo < t:
        shares[before_issue] = shares.get(before_issue, 0.0) + min(hi, t) - lo
    timeline = request.timeline()
    for label, cycles in timeline:
        end = t + cycles
        overlap = min(hi, end) - max(lo, t)
        if overlap > _EPSILON:
            shares[label] = shares.get(label, 0.0) + overlap
        t = end
    if hi > t + _EPSILON:  # completion lands on a whole cycle, so anything short of one is rounding
        if hi - t >= 1 - _EPSILON:
            where = f"after {timeline[-1][0]!r}" if timeline else "from its issue"
            raise UnexplainedWait(
                f"a request waited {hi - t:g} cycles {where} that no hop accounts for (a component "
                "held a transfer without resume_after)"
            )
        label = timeline[-1][0] if timeline else before_issue
        shares[label] = shares.get(label, 0.0) + hi - max(lo, t)
