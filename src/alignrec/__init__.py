"""alignrec: an LLM recommender aligned with a collaborative sequential model."""

__version__ = "0.1.0"
