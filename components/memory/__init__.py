"""Memories: on-chip scratchpads and main memory."""
