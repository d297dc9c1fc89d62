"""The systolic array: a grid of PEs executing a layer fold by fold (os, ws or is dataflow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from desim import REQUEST, Buffer, Compute, DesimError, Param, Port, ProcessGenerator, Stat
from desim.components.compute.dataflow import DATAFLOWS, Mapping
from desim.components.compute.fold_schedule import FoldSchedule, build_schedule, check_steps
from desim.components.compute.mappers import Problem, choose, get_mapper, spec_for
from desim.components.compute.sharing import candidate_splits
from desim.ledger import Ledger
from desim.limits import MAX_CYCLES
from desim.params import show_number
from desim.workload import OPERANDS, Layer, Share

if TYPE_CHECKING:
    from collections.abc import Sequence

    import simpy

    from desim.staging import Staging
    from desim.system import System
    from desim.trace import Trace


MAX_FOLDS = 1 << 22
"""Most folds a layer may take: the fold table of a larger one would not fit in memory."""
MAX_EDGE = 1 << 16
"""Most rows (or columns) of PEs an array may have."""


class OracleMismatch(RuntimeError):
    """The event model's compute cycles differ from the closed form: a bug in desim, never the input's."""


class SystolicArray(Compute):
    """A rows x cols systolic array, timed one event per fold step as in SCALE-Sim.

    Timing model: the layer's GEMM is folded onto the array by its dataflow and the layer's
    mapping, which the array's ``mapper`` chooses (see ``dataflow`` and ``mappers``; SCALE-Sim's by
    default): each fold costs SCALE-Sim's cycles for its temporal extent, and folds run strictly
    one after another in the mapping's loop order. Before a step starts, the array waits until
    its IFMAP and FILTER runs are ready in their scratchpads and its OFMAP run is (room for
    results, spilled partial sums read back); after it, it hands its results to the OFMAP
    scratchpad. Each cycle spent waiting is a stall, charged to the operand waited for (IFMAP
    first, then FILTER, then OFMAP) and, by the stall ledger, to where the awaited request spent
    that cycle (``stall_cause_cycles``). After the last fold it waits for the OFMAP scratchpad to
    drain, charged to OFMAP. The SRAM-to-PE path is assumed to keep up with the array. Cycle
    counts follow SCALE-Sim's convention: a layer that takes ``n`` cycles reports ``n - 1`` (the
    index of its last cycle).

    Traced, the array draws on its ``folds`` track the layer (naming its mapping), each fold
    step, and each stall (named by the operand waited for) split into its ledger causes.
    """

    kind = "systolic_array"

    rows = Param(int, 32, "PEs", "rows of processing elements (SCALE-Sim ArrayHeight)", minimum=1, maximum=MAX_EDGE)
    cols = Param(int, 32, "PEs", "columns of processing elements (SCALE-Sim ArrayWidth)", minimum=1, maximum=MAX_EDGE)
    dataflow = Param(str, "ws", choices=DATAFLOWS, description="output, weight or input stationary")
    mapper = Param(
        str, "scalesim", description="what chooses each layer's loop order and tiles: scalesim, psum-resident, ..."
    )
    mapping = Param(dict, {}, description="the explicit mapper's spec: {order: NMK, M: 256}, or per layer name")

    ifmap = Port(REQUEST, "reads IFMAP tiles", peer=Buffer)
    filter = Port(REQUEST, "reads FILTER tiles", peer=Buffer)
    ofmap = Port(REQUEST, "writes OFMAP results and partial sums", peer=Buffer)

    total_cycles = Stat("cycles", "layer length, SCALE-Sim's convention (elapsed cycles - 1)")
    compute_cycles = Stat("cycles", "cycles spent computing, same convention (sum of fold cycles - 1)")
    stall_cycles = Stat("cycles", "cycles the array waited for memory")
    stall_ifmap_cycles = Stat("cycles", "stall cycles waiting for IFMAP tiles")
    stall_filter_cycles = Stat("cycles", "stall cycles waiting for FILTER tiles")
    stall_ofmap_cycles = Stat("cycles", "stall cycles waiting for OFMAP room or the final drain")
    stall_cause_cycles = Stat(
        "cycles", "stall cycles by where the awaited request spent them (label: cycles)", initial={}
    )
    folds = Stat("folds", "folds executed")
    steps = Stat("steps", "fold steps executed (folds split to stream oversized tiles)")
    macs = Stat("MACs", "multiply-accumulates of the layer")
    pes = Stat("PEs", "processing elements (rows x cols), busy or not")
    overall_util_percent = Stat("%", "MACs / (total cycles x PEs)")
    mapping_efficiency_percent = Stat("%", "mean over folds of mapped PEs / PEs")
    compute_util_percent = Stat("%", "MACs / (compute cycles x PEs)")
    ifmap_sram_reads = Stat("words", "IFMAP words read from SRAM into the array")
    filter_sram_reads = Stat("words", "FILTER words read from SRAM into the array")
    ofmap_sram_writes = Stat("words", "OFMAP words (results and partial sums) written to SRAM")
    first_fold_cycle = Stat("cycles", "when the first fold started, from layer start")
    last_fold_cycle = Stat("cycles", "the last cycle of the last fold, from layer start")
    chosen_mapping = Stat(
        "", "the layer's mapping: mapper, loop order, what a fold covers, and each buffer's tile", initial={}
    )
    planned_traffic = Stat(
        "bytes",
        "what the plans move below the buffers: per input distinct, read and re-read bytes; "
        "OFMAP writes and partial-sum writes and reads",
        initial={},
    )

    def check(self) -> None:
        get_mapper(self.mapper, f"{self.name}.mapper").check(self.mapping, f"{self.name}.mapping", self)
        edge_words = max(self.rows, self.cols)
        for operand in OPERANDS:
            binding = getattr(self, operand)
            buffer = binding.peer
            key = f"{self.name}.{operand}"
            if len(binding.nodes) != 2:
                raise DesimError(f"must link straight to its buffer, not through {binding.nodes[1]!r}", key=key)
            held = buffer.holds()
            if held and operand not in held:
                raise DesimError(
                    f"connects to {buffer.name!r}, which holds {', '.join(map(repr, held))}, not {operand!r}", key=key
                )
            if not binding.links[0].is_ideal():
                raise DesimError(
                    "the array reads its buffers at the rate its fold timing assumes, so this link "
                    "cannot have its own bandwidth or latency",
                    key=key,
                )
        # An array edge's worth of elements per cycle passes between the array and each operand's
        # room, at the widest an element may be (a partial sum may be wider than a word).
        needed = self._least_room()
        widest = max(self.system.word_bytes, self.system.accumulator_bytes)
        for buffer, operands in self._sharing().items():
            if buffer.capacity_bytes < needed * len(operands):
                shared = f"shared by {len(operands)} operands " if len(operands) > 1 else ""
                raise DesimError(
                    f"{buffer.capacity_bytes} bytes {shared}cannot double-buffer a {edge_words}-element edge of the "
                    f"{self.rows}x{self.cols} array at {widest} bytes an element (it needs at least "
                    f"{needed * len(operands)})",
                    key=f"{buffer.name}.capacity_bytes",
                )

    def _least_room(self) -> int:
        """The least room an operand may have: two array edges of elements, at the widest."""
        return 2 * max(self.rows, self.cols) * max(self.system.word_bytes, self.system.accumulator_bytes)

    def _sharing(self) -> dict[Buffer, list[str]]:
        """Each buffer the array talks to, and the operands it stages there."""
        sharing: dict[Buffer, list[str]] = {}
        for operand in OPERANDS:
            sharing.setdefault(getattr(self, operand).peer, []).append(operand)
        return sharing

    def check_layer(self, layer: Layer, share: Share) -> None:
        """The layer's mapping, folds, compute cycles and steps are within the limits (checked before time starts)."""
        for budgets in self._budgets(layer, share):
            mapping = self._map(layer, share, budgets)
            if mapping.folds > MAX_FOLDS:
                raise DesimError(
                    f"needs {mapping.folds:,} folds on the {self.rows}x{self.cols} array; desim runs at most "
                    f"{MAX_FOLDS:,} folds per layer"
                )
            if mapping.ideal_cycles() >= MAX_CYCLES:
                raise DesimError(
                    f"needs {mapping.ideal_cycles():,} cycles of compute on the {self.rows}x{self.cols} array; "
                    f"desim simulates layers of fewer than {show_number(MAX_CYCLES)} cycles"
                )
            check_steps(layer, mapping, self.system.word_bytes, budgets, share, self.system.accumulator_bytes)

    def check_workload(self, layers: Sequence[Layer]) -> None:
        """A per-layer mapping names only layers of the workload."""
        mapper = get_mapper(self.mapper, f"{self.name}.mapper")
        mapper.check_layers(self.mapping, f"{self.name}.mapping", {layer.name for layer in layers})

    def _map(self, layer: Layer, share: Share, budgets: dict[str, int]) -> Mapping:
        """The mapping the array's mapper chooses for the layer's share, given each operand's room."""
        key = f"{self.name}.mapping"
        problem = Problem(
            layer,
            share,
            self.rows,
            self.cols,
            self.dataflow,
            self.system.word_bytes,
            self.system.accumulator_bytes,
            budgets,
            spec_for(self.mapping, layer.name, key),
        )
        return choose(get_mapper(self.mapper, f"{self.name}.mapper"), problem)

    def _budgets(self, layer: Layer, share: Share) -> list[dict[str, int]]:
        """The rooms each operand may be planned for: its buffer's capacity, and for operands that
        share a buffer, each split of it worth trying (see ``sharing``); one choice when none shares."""
        sharing = self._sharing()
        fixed = {ops[0]: buffer.capacity_bytes for buffer, ops in sharing.items() if len(ops) == 1}
        shared = [(buffer, ops) for buffer, ops in sharing.items() if len(ops) > 1]
        if not shared:
            return [fixed]
        ((buffer, operands),) = shared  # with three operands, at most one buffer is shared
        word, least = self.system.word_bytes, self._least_room()
        return [
            {**fixed, **split} for split in candidate_splits(layer, share, word, buffer.capacity_bytes, operands, least)
        ]

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        self.pes = self.rows * self.cols  # also when the array has no share of the layer

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        self._schedules: dict[tuple[tuple[int, ...], Share, str], FoldSchedule] = {}
        self._step, self._steps = 0, 1

    def progress(self) -> float:
        return self._step / self._steps

    def stall_causes(self) -> list[str]:
        """Every label the ledger may charge: each buffer's, which name what lies below them."""
        return list(dict.fromkeys(label for buffer in self._sharing() for label in buffer.stall_causes()))

    def run_layer(self, layer: Layer, share: Share) -> simpy.Event:
        schedule = self._schedule(layer, share)
        self._step, self._steps = 0, len(schedule.steps)
        stages = [getattr(self, operand).peer.stage(operand, schedule.plans[operand]) for operand in OPERANDS]
        return self.env.process(self._execute(layer, share, schedule, *stages))

    def _schedule(self, layer: Layer, share: Share) -> FoldSchedule:
        """The schedule of the layer's share; layers of the same shape (ResNet's repeated blocks) share one."""
        key = (layer.shape, share, layer.name if self.mapping else "")
        if key not in self._schedules:
            word, acc = self.system.word_bytes, self.system.accumulator_bytes
            schedules = (
                build_schedule(layer, self._map(layer, share, budgets), word, budgets, share, acc)
                for budgets in self._budgets(layer, share)
            )
            # Of the splits of a shared buffer, the one that moves the fewest bytes below (the first, on a tie).
            self._schedules[key] = min(schedules, key=lambda schedule: schedule.traffic.total)
        return self._schedules[key]

    def _execute(
        self, layer: Layer, share: Share, schedule: FoldSchedule, ifmap: Staging, filter_: Staging, ofmap: Staging
    ) -> ProcessGenerator:
        env = self.env
        ready_i, ready_f, ready_o = ifmap.ready, filter_.ready, ofmap.ready
        # Single-ported SRAMs need to know which bank each step uses: (position in a step's runs, staging).
        banked = [(i, staged) for i, staged in enumerate((ifmap, filter_, ofmap)) if staged.single_ported]
        ledger = Ledger(self.stall_causes())
        trace = self.trace
        start = env.now
        stall_i = stall_f = stall_o = 0
        reads_i = reads_f = writes_o = 0
        busy = 0
        first = None
        for step, (cycles, run_i, release_i, run_f, release_f, run_o, out, n_i, n_f, n_o) in enumerate(schedule.steps):
            self._step = step
            if not ready_i[run_i]:
                t = env.now
                yield ifmap.arrival(run_i)
                stall_i += env.now - t
                charged = ledger.charge(t, env.now, ifmap.phases(run_i, env.now))
                if trace is not None:
                    self._trace_stall(trace, "ifmap", t, charged, run=run_i)
            if not ready_f[run_f]:
                t = env.now
                yield filter_.arrival(run_f)
                stall_f += env.now - t
                charged = ledger.charge(t, env.now, filter_.phases(run_f, env.now))
                if trace is not None:
                    self._trace_stall(trace, "filter", t, charged, run=run_f)
            if not ready_o[run_o]:
                t = env.now
                yield ofmap.arrival(run_o)
                stall_o += env.now - t
                charged = ledger.charge(t, env.now, ofmap.phases(run_o, env.now))
                if trace is not None:
                    self._trace_stall(trace, "ofmap", t, charged, run=run_o)
            if first is None:
                first = env.now - start
            if banked:
                runs = (run_i, run_f, run_o)
                for i, staged in banked:
                    staged.begin_step(runs[i])
            if cycles:
                yield env.timeout(cycles)
                if trace is not None:
                    fold = int(schedule.fold_of[step])
                    trace.slice(self.name, "folds", f"fold {fold}", env.now - cycles, env.now, fold=fold, step=step)
            busy += cycles
            for _, staged in banked:
                staged.end_step()
            if release_i:
                ifmap.release(run_i)
            if release_f:
                filter_.release(run_f)
            if out:
                ofmap.write(out)
            reads_i += n_i
            reads_f += n_f
            writes_o += n_o
        # The built-in oracle: whatever the memory did, the compute part is SCALE-Sim's closed form.
        if busy != schedule.mapping.ideal_cycles():
            raise OracleMismatch(
                f"layer {layer.name!r}: {busy} cycles of compute, but the closed form says "
                f"{schedule.mapping.ideal_cycles()}"
            )
        last = env.now - start - 1
        t = env.now
        yield ofmap.drained()
        stall_o += env.now - t
        charged = ledger.charge(t, env.now, ofmap.drain_phases(env.now))
        if trace is not None:
            self._trace_stall(trace, "ofmap drain", t, charged)

        elapsed = env.now - start
        mapping = schedule.mapping
        pes = self.rows * self.cols
        self.total_cycles = elapsed - 1
        self.compute_cycles = busy - 1
        self.stall_cycles = stall_i + stall_f + stall_o
        self.stall_ifmap_cycles, self.stall_filter_cycles, self.stall_ofmap_cycles = stall_i, stall_f, stall_o
        self.stall_cause_cycles = ledger.cycles
        self.folds = mapping.folds
        self.steps = len(schedule.steps)
        macs = share.m * share.n * layer.k
        self.macs = macs
        self.overall_util_percent = 100 * macs / (self.total_cycles * pes) if self.total_cycles > 0 else 0.0
        self.compute_util_percent = 100 * macs / (self.compute_cycles * pes) if self.compute_cycles > 0 else 0.0
        self.mapping_efficiency_percent = 100 * schedule.used_pes / (mapping.folds * pes)
        self.ifmap_sram_reads, self.filter_sram_reads, self.ofmap_sram_writes = reads_i, reads_f, writes_o
        self.first_fold_cycle = first
        self.last_fold_cycle = last
        self.chosen_mapping = schedule.describe({operand: getattr(self, operand).peer.name for operand in OPERANDS})
        self.planned_traffic = schedule.traffic.describe()
        self._step = self._steps
        if trace is not None:
            fold = self.chosen_mapping["fold"]
            trace.slice(
                self.name,
                "folds",
                layer.name,
                start,
                env.now,
                total_cycles=self.total_cycles,
                stall_cycles=self.stall_cycles,
                folds=mapping.folds,
                mapper=mapping.mapper,
                order=mapping.order,
                fold=" x ".join(f"{dim} {size}" for dim, size in fold.items()),
            )

    def _trace_stall(self, trace: Trace, waited_for: str, start: int, charged: dict[str, int], **args: int) -> None:
        """A stall from ``start`` to now, named by what it waited for, over its causes laid end to end."""
        end = self.env.now
        if end == start:
            return
        trace.slice(self.name, "folds", f"stall: {waited_for}", start, end, cycles=end - start, **args)
        for label, cycles in charged.items():
            if cycles:
                trace.slice(self.name, "folds", label, start, start + cycles, cycles=cycles)
                start += cycles
