"""The stall ledger on hand-built phases: every expected split below is worked out by hand."""

from fractions import Fraction

import pytest

from desim.channel import Nested
from desim.ledger import Ledger, UndeclaredCause, UnexplainedWait, largest_remainder

LABELS = ("cap", "queue", "service", "latency", "slot")
NESTED = (*LABELS, "link", "l2 wait", "dram queue", "dram service", "l2 service")


class FakeRequest:
    """A request issued at ``issued_at`` that spent ``segments`` (label, cycles) in turn, then completed."""

    def __init__(self, issued_at: float, *segments: tuple[str, float]) -> None:
        self.issued_at = issued_at
        self.segments = list(segments)

    def timeline(self) -> list[tuple[str, float]]:
        return self.segments


def test_a_plain_cause_takes_the_whole_stall():
    ledger = Ledger(LABELS)
    assert ledger.charge(0, 10, [(10, None, "cap")]) == {"cap": 10}
    assert ledger.cycles == {"cap": 10, "queue": 0, "service": 0, "latency": 0, "slot": 0}


def test_a_request_lays_its_segments_over_the_stall():
    # Waited for room until 2, then on a request issued at 2: queued 2..5, served 5..9, in flight 9..10.
    request = FakeRequest(2, ("queue", 3), ("service", 4), ("latency", 1))
    ledger = Ledger(LABELS)
    split = ledger.charge(0, 10, [(2, None, "cap"), (10, request, "cap")])
    assert split == {"cap": 2, "queue": 3, "service": 4, "latency": 1}
    assert list(split) == ["cap", "queue", "service", "latency"]  # in the order they held


def test_a_stall_that_starts_mid_request_books_only_what_it_overlaps():
    # Same request, but the array only started waiting at 4: queue 4..5, service 5..9, latency 9..10.
    request = FakeRequest(2, ("queue", 3), ("service", 4), ("latency", 1))
    assert Ledger(LABELS).charge(4, 10, [(2, None, "cap"), (10, request, "cap")]) == {
        "queue": 1,
        "service": 4,
        "latency": 1,
    }


def test_time_before_a_request_was_issued_goes_to_its_phase_label():
    # Slot free at 1; the request went out at 3 (room came at 3), served 3..8.
    request = FakeRequest(3, ("service", 5))
    split = Ledger(LABELS).charge(0, 8, [(1, None, "slot"), (8, request, "cap")])
    assert split == {"slot": 1, "cap": 2, "service": 5}


def test_a_phase_list_that_stops_short_leaves_its_last_cause_holding():
    assert Ledger(LABELS).charge(0, 5, [(3, None, "slot")]) == {"slot": 5}


def test_half_cycles_tie_and_the_tie_goes_to_the_first_label_alphabetically():
    # 2.5 + 2.5 cycles: floors 2 and 2, one cycle left, equal remainders: 'latency' < 'service'.
    request = FakeRequest(0, ("service", 2.5), ("latency", 2.5))
    assert Ledger(LABELS).charge(0, 5, [(5, request, "cap")]) == {"service": 2, "latency": 3}


def test_the_largest_remainder_wins_the_leftover_cycle():
    # 0.7 + 1.6 + 1.7 = 4 cycles: floors 0, 1, 1 leave 2; remainders 0.7, 0.6, 0.7: 'latency' and
    # 'queue' (0.7 each, alphabetical) get them.
    request = FakeRequest(0, ("queue", 0.7), ("service", 1.6), ("latency", 1.7))
    assert Ledger(LABELS).charge(0, 4, [(4, request, "cap")]) == {"queue": 1, "service": 1, "latency": 2}


def test_ten_tenths_of_a_cycle_book_exactly_one():
    # Ten 0.1-cycle segments add up to 0.9999999999999999 in floats; the cycle is still booked once.
    request = FakeRequest(0, *(("service", 0.1),) * 5, *(("queue", 0.1),) * 5)
    ledger = Ledger(LABELS)
    ledger.charge(0, 1, [(1, request, "cap")])
    assert sum(ledger.cycles.values()) == 1


def test_the_ledger_sums_across_stalls():
    ledger = Ledger(LABELS)
    ledger.charge(0, 3, [(3, None, "cap")])
    ledger.charge(10, 14, [(14, FakeRequest(9, ("service", 5)), "cap")])
    assert ledger.cycles == {"cap": 3, "queue": 0, "service": 4, "latency": 0, "slot": 0}


def test_an_empty_stall_books_nothing():
    ledger = Ledger(LABELS)
    assert ledger.charge(5, 5, [(5, None, "cap")]) == {}
    assert sum(ledger.cycles.values()) == 0


def test_an_undeclared_label_is_a_bug_named_as_such():
    with pytest.raises(UndeclaredCause, match="'bank conflict' was not declared"):
        Ledger(LABELS).charge(0, 2, [(2, None, "bank conflict")])


def test_a_stall_with_nothing_to_blame_is_refused():
    with pytest.raises(ValueError, match="no phases"):
        Ledger(LABELS).charge(0, 2, [])


@pytest.mark.parametrize(
    ("total", "shares"),
    [
        # Found by search: at these lengths, float quotas leave 2, 2 and -1 cycles over for 2 labels.
        (5366616950934725, {"a": 633644677168676.6, "b": 4010286275321070.0}),
        (5224781219265003, {"a": 4375892823316725.5, "b": 1160496603320718.2}),
        (6790740701558043, {"a": 6616624487244477.0, "b": 5028527346565964.0}),
    ],
)
def test_float_rounding_at_huge_lengths_falls_back_to_exact_fractions(total, shares):
    split = largest_remainder(total, shares)
    assert sum(split.values()) == total
    # Independently: exact quotas from the floats' exact values, then largest remainder by hand.
    whole = sum(Fraction(share) for share in shares.values())
    quotas = {label: Fraction(share) * total / whole for label, share in shares.items()}
    floors = {label: int(quota) for label, quota in quotas.items()}
    leftover = total - sum(floors.values())
    for label in sorted(quotas, key=lambda label: (floors[label] - quotas[label], label))[:leftover]:
        floors[label] += 1
    assert split == floors


def test_negative_shares_count_as_nothing():
    assert largest_remainder(4, {"a": -1.0, "b": 2.0}) == {"a": 0, "b": 4}


def test_a_wait_no_hop_accounts_for_is_an_error_not_a_guess():
    ledger = Ledger(LABELS)
    with pytest.raises(UnexplainedWait, match="waited 3 cycles after 'service'"):
        ledger.charge(0, 10, [(10, FakeRequest(0, ("queue", 2), ("service", 5)), "cap")])


def test_a_nested_wait_is_the_timeline_of_the_request_below_from_the_moment_it_began():
    below = FakeRequest(4, ("dram queue", 3), ("dram service", 2))  # issued at 4, done at 9
    # A transfer that reached the level at 6 joined the fetch already under way: 6..7 queued, 7..9 served.
    assert Nested(6, below, None).segments() == [("dram queue", 1), ("dram service", 2)]
    # One that arrived at 2 and waited until the fetch was issued at 4 blames the named cause first.
    assert Nested(2, below, "l2 wait").segments() == [("l2 wait", 2), ("dram queue", 3), ("dram service", 2)]
    with pytest.raises(AssertionError, match="no cause named"):
        Nested(2, below, None).segments()


def test_a_stall_behind_a_forwarded_read_is_charged_to_the_deepest_cause():
    # Issued at 0: a link 0..1, then at the level 1..9 behind its fetch (issued at 1: DRAM queue
    # 1..4, service 4..9), then the level's port 9..11. The array stalled 3..11.
    below = FakeRequest(1, ("dram queue", 3), ("dram service", 5))
    above = FakeRequest(0, ("link", 1), *Nested(1, below, None).segments(), ("l2 service", 2))
    ledger = Ledger(NESTED)
    assert ledger.charge(3, 11, [(11, above, "cap")]) == {"dram queue": 1, "dram service": 5, "l2 service": 2}
