"""alignrec: an LLM recommender aligned with a collaborative sequential model."""

__version__ = "0.2.0"
"""Bumped whenever a change alters results (see the README): it is part of every stage's
fingerprint, so a rerun recomputes what older code made instead of reusing it."""
