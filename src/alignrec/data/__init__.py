"""Data stage: read a source, filter it, re-index it, split it leave-one-out."""
