"""The limits of what desim simulates, in one place. Inputs are checked against them where they are
parsed, and whole layers before time starts, so a run either starts within them or does not start.

Components add limits of their own where they depend on the hardware (the systolic array's folds
and steps, say), and check them in ``check_layer``, also before time starts.
"""

MAX_NUMBER = 2**53
"""The largest integer any input may give (cycles, bytes, strides, counts), and the largest finite
number: beyond it, a float no longer holds every integer, and cycle counts would stop being exact."""

MAX_CYCLES = MAX_NUMBER
"""The longest a layer may take, in cycles; the closed form of a layer's compute must stay below."""

MIN_BANDWIDTH = 1e-3
"""The slowest bandwidth, in bytes per cycle, that a memory, bus or link may have."""

MAX_LATENCY = 2**32
"""The longest latency, in cycles, that a memory, bus or link may add to a transfer."""

MAX_LAYERS = 100_000
"""Most layers a workload may have, once depthwise layers are split into one layer per channel."""

MAX_OPERAND_ELEMENTS = 2**31
"""The largest IFMAP, FILTER or OFMAP (in elements) a layer may have."""

MAX_INPUT_BYTES = 64 * 2**20
"""The largest input file (config, architecture, topology) desim reads."""

MAX_NESTING = 100
"""The deepest a YAML architecture file may nest its collections."""
