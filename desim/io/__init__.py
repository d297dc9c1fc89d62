"""Readers and writers of the files desim exchanges with its users."""
