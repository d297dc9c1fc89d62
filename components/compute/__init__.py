"""Compute units: the systolic array, its dataflow mapping and its fold schedule."""
