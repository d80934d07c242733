"""Constrained decoding: turn an LLM's output into a ranked list of real items.

trie (every item's code sequence compiled into tensors) -> beam (batched beam search
that prefills once, shares the KV cache across beams and can only follow the trie).
"""

from alignrec.decode.beam import constrained_beam_search, search_and_score
from alignrec.decode.scoring import CodeHead
from alignrec.decode.trie import CodeTrie

__all__ = ["CodeHead", "CodeTrie", "constrained_beam_search", "search_and_score"]
