"""Serving stage: pre-computed top-K snapshots in a store, and the online recommendation service."""
