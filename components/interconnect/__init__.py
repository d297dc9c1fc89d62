"""Interconnects: what carries transfers between buffers and memory."""
