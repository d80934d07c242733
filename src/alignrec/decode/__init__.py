"""Constrained decoding: turn an LLM's output into a ranked list of real items.

trie (every item's code sequence compiled into tensors) -> beam (batched beam search
that prefills once, shares the KV cache across beams and can only follow the trie).
"""
