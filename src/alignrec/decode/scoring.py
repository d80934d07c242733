"""A code token's log-probability from a forward: normalised over the vocabulary or over its level's
codes, from the whole output head or from the head's code rows alone.

Why a code head: a model trained with ``llm.code_softmax: level`` needs, at a code position, only
the logits of that level's codes. The whole head is a 49k-row matmul and a beams x 49k logit
matrix at every level, for the 1,024 rows the trie can ever use. A ``code_head`` gives those rows'
logits from the decoder's last hidden state (the caller knows how its head is built: LoRA,
trainable rows, a prior), and the search reads logits in code space: column ``level * K + code``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from alignrec.decode.trie import CodeTrie
from alignrec.errors import AlignrecError

SOFTMAXES = ("level", "vocabulary")
"""What a code token's log-probability is normalised over (``llm.code_softmax``)."""

CodeHead = Callable[[torch.Tensor], torch.Tensor]
"""Hidden states [..., hidden] (the decoder's last, after its final norm) -> the logits of every level's
codes [..., levels * K], level-major: what the output head gives at those tokens' rows."""


def log_normaliser(logits: torch.Tensor, rows: int = 32) -> torch.Tensor:
    """[N, 1] fp32 logsumexp over the vocabulary of bf16 or fp32 ``logits`` [N, vocab], computed
    ``rows`` at a time: the fp32 copy of a whole beams x vocabulary matrix is a fresh allocation too
    large for the allocator to reuse, and its page faults cost more than the arithmetic."""
    return torch.cat([chunk.float().logsumexp(dim=-1, keepdim=True) for chunk in logits.split(rows)])


@dataclass(frozen=True)
class CodeScorer:
    """How the search turns a model's forward into its codes' log-probabilities."""

    softmax: str
    head: CodeHead | None = None
    """Set: logits come in code space from this head (``level`` softmax only); None: the model's own logits."""
    keeps_logits: bool = True
    """The model takes ``logits_to_keep`` (it can skip its head, or apply it at the last position only)."""

    @classmethod
    def build(cls, softmax: str, head: CodeHead | None, model_keeps_logits: bool) -> CodeScorer:
        """``model_keeps_logits``: the model can skip its own head (``logits_to_keep``); without it a
        code head would only add work, so the model's logits are read."""
        if softmax not in SOFTMAXES:
            raise AlignrecError(f"beam search: softmax must be one of {', '.join(SOFTMAXES)}, got {softmax!r}")
        if head is not None and softmax != "level":
            raise AlignrecError("beam search: a code_head gives only the codes' logits, which normalise over the "
                                "level's codes; pass softmax='level' or no code_head")
        return cls(softmax, head if model_keeps_logits else None, model_keeps_logits)

    def logits(self, model: torch.nn.Module, last: bool = False, **inputs: Any) -> torch.Tensor:
        """[B, T, V]: the logits the search reads after ``model(**inputs)`` (``last``: the last position's,
        T = 1 where the model allows); V is the vocabulary, or ``levels * K`` codes with a code head."""
        if self.head is None:
            extra = {"logits_to_keep": 1} if last and self.keeps_logits else {}
            return model(**inputs, **extra).logits
        nothing = torch.empty(0, dtype=torch.long, device=inputs["input_ids"].device)
        hidden = model(**inputs, logits_to_keep=nothing, output_hidden_states=True).hidden_states[-1]
        return self.head(hidden[:, -1:] if last else hidden)

    def log_probs(self, logits: torch.Tensor, trie: CodeTrie, levels: int | torch.Tensor) -> torch.Tensor:
        """[N, K] fp32 log-probabilities of the codes of level ``levels`` (one for all rows, or [N])
        under ``logits`` [N, V] (:meth:`logits`' last axis)."""
        if self.head is None:
            columns = trie.code_token_ids[levels]
        else:
            codes = torch.arange(trie.codebook_size, device=logits.device)
            columns = (torch.as_tensor(levels, device=logits.device)[..., None] * trie.codebook_size) + codes
        picked = (logits[:, columns] if columns.dim() == 1 else logits.gather(1, columns)).float()
        return picked.log_softmax(dim=-1) if self.softmax == "level" else picked - log_normaliser(logits)

    def check_vocabulary(self, logits: torch.Tensor, trie: CodeTrie) -> None:
        """The model's logits reach every code token (the code tokens were added to it)."""
        if self.head is None and trie.max_token_id >= logits.shape[-1]:
            raise AlignrecError(
                f"beam search: code token id {trie.max_token_id} is outside the model's vocabulary "
                f"({logits.shape[-1]}); add the code tokens to the model first"
            )
        if self.head is not None and logits.shape[-1] != trie.levels * trie.codebook_size:
            raise AlignrecError(f"beam search: the code head gave {logits.shape[-1]} logits, not the trie's "
                                f"{trie.levels} x {trie.codebook_size} codes")
