"""desim's stock hardware library (installed as ``desim.components``).

Each kind registers through the ``desim.components`` entry-point group, exactly as a third-party
component would: compute (``systolic_array``), memory (``scratchpad``, ``dram``) and
interconnect (``bus``).
"""
