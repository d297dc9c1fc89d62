"""The contract between a compute unit and the buffers that stage its operands.

For each layer the compute unit works out, per operand, a :class:`StagingPlan`: the *runs* of
data it will need, in order, what each holds and fetches, and which tile of the tensor each
fetch is. It hands the plan to the operand's buffer (:meth:`~desim.component.Buffer.stage`) and
from then on talks to the :class:`Staging` that comes back: it asks whether a run is ready,
waits for one, says when it is done with one, and hands over results. Any buffer kind that
implements the role plugs into any compute unit that speaks it; neither names the other's class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import simpy

    from desim.data import Tile
    from desim.ledger import Phase


@dataclass(frozen=True)
class StagingPlan:
    """What one buffer moves for one operand of a layer, as a list of runs taken in order.

    A run takes ``hold[j]`` bytes of room and reads ``fetch[j]`` bytes from memory into it:
    ``tiles[j]`` (None where it reads nothing). For inputs the two sizes are equal; for OFMAP a
    run is room for results, and reads back spilled partial sums once write ``after_write[j]``
    (an index into ``writes``, the tiles the layer's writes carry, in order) has landed. A
    resident plan's runs stay until the layer ends; otherwise each run is released after the
    last step that reads it (an OFMAP run's room, as the writes of its results land).
    ``budget`` is the room the plan was made for: all of the buffer, or the operand's share of
    one it shares with others.
    """

    fetch: list[int]
    hold: list[int]
    resident: bool
    unique_bytes: int
    """The operand's distinct bytes: the least any plan can read (or write, for OFMAP)."""
    tiles: list[Tile | None]
    budget: int
    after_write: list[int] | None = None
    writes: list[Tile] | None = None
    frees: list[int] | None = None
    """Room each write frees once it lands (default: its bytes; else the room its results took
    while they were partial sums, at the accumulator's width)."""


class Staging(Protocol):
    """One operand staged in a buffer for the current layer, as the compute unit sees it."""

    ready: list[bool]
    """Whether each run is in (room taken, data arrived); the compute unit reads it before waiting."""
    single_ported: bool
    """Whether the buffer needs :meth:`begin_step`/:meth:`end_step` (its banks conflict with fills)."""

    def arrival(self, run: int) -> simpy.Event:
        """An event that fires once run ``run`` is ready."""

    def phases(self, run: int, ready_at: float) -> list[Phase]:
        """What a wait for ``run`` (ended at ``ready_at``) waited on, for the stall ledger."""

    def release(self, run: int) -> None:
        """The compute unit is done with run ``run``."""

    def write(self, nbytes: int) -> None:
        """Results of ``nbytes`` are ready to go down (the plan's next write)."""

    def drained(self) -> simpy.Event:
        """No more results this layer: an event that fires once every write has landed."""

    def drain_phases(self, until: float) -> list[Phase]:
        """What the final wait for the drain waited on."""

    def begin_step(self, run: int) -> None:
        """A step that uses run ``run`` starts (single-ported buffers only)."""

    def end_step(self) -> None:
        """The step is over."""
