"""The fine-tuned LLM as a recommender: history -> prompt -> trie-constrained beam search -> top-K items."""

from __future__ import annotations

import numpy as np
import torch

from alignrec.decode.beam import search_and_score
from alignrec.decode.scoring import CodeHead
from alignrec.decode.trie import CodeTrie
from alignrec.llm.encoding import ExampleEncoder
from alignrec.llm.tasks.sequential import Title, recommendation_prompt


class LLMRecommender:
    name = "llm"

    def __init__(
        self,
        model: torch.nn.Module,
        encoder: ExampleEncoder,
        trie: CodeTrie,
        pad_id: int,
        history: int,
        beams: int,
        batch_size: int = 8,
        bf16: bool = False,
        title: Title = None,
        shared_cache: bool = True,
        softmax: str = "vocabulary",
        code_head: CodeHead | None = None,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.trie = trie
        self.pad_id = pad_id
        self.history = history
        self.beams = beams
        self.batch_size = batch_size
        self.bf16 = bf16
        self.title = title
        """Titles after each history item's codes, as in training (``sequential.prompt_title``)."""
        self.shared_cache = shared_cache
        """The beams share their prompt's KV cache where the model allows (``llm.decode_shared_cache``)."""
        self.softmax = softmax
        """What a code's log-probability is normalised over, as the model was trained (``llm.code_softmax``)."""
        self.code_head = code_head
        """With ``level``: the code rows' logits alone, not the whole head's (``alignrec.llm.head.code_head``)."""

    def prompts(self, histories: list[np.ndarray]) -> list[list[int]]:
        return [self.encoder.prompt_ids(recommendation_prompt(h, self.history, self.title)) for h in histories]

    def recommend(
        self, histories: list[np.ndarray], k: int, exclude_history: bool = True, progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids [B, k] (-1 pads) and scores (sum of code log-probs), best first.

        The one rule for the search width, whoever asks (evaluation, precompute, the live endpoint):
        ``max(llm.beams, k)`` beams, so k items always come from a search at least k wide and the
        same k gives the same list everywhere.
        """
        items, scores, _ = self.search(histories, k, exclude_history, progress=progress)
        return items, scores

    def search(
        self,
        histories: list[np.ndarray],
        k: int,
        exclude_history: bool = True,
        *,
        candidates: np.ndarray | None = None,
        only: list[np.ndarray] | None = None,
        progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`recommend`'s search, which can also score ``candidates`` [B, C] exactly (-1 pads)
        or keep to ``only[b]``'s items (see :func:`alignrec.decode.beam.search_and_score`)."""
        was_training = self.model.training
        self.model.eval()
        try:
            device_type = next(self.model.parameters()).device.type
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.bf16):
                return search_and_score(
                    self.model,
                    self.prompts(histories),
                    self.trie,
                    beams=max(self.beams, k),
                    k=k,
                    pad_token_id=self.pad_id,
                    exclude=[np.asarray(h) for h in histories] if exclude_history else None,
                    batch_size=self.batch_size,
                    progress=progress,
                    only=only,
                    candidates=candidates,
                    shared_cache=self.shared_cache,
                    softmax=self.softmax,
                    code_head=self.code_head,
                )
        finally:
            self.model.train(was_training)
