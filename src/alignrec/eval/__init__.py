"""Evaluation stage: rank, clean, score: one harness for every model."""
