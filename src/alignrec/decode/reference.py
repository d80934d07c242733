"""The peer path: transformers' ``generate`` constrained by ``prefix_allowed_tokens_fn``.

What LC-Rec and MiniOneRec decode with. Kept as the yardstick that the tests compare
:func:`~alignrec.decode.beam.constrained_beam_search` against and ``bench/decode.py``
times it against. With ``length_penalty=0`` generate ranks finished beams by their
summed log-probability (it divides by ``generated_length ** length_penalty``); every
item has the same number of codes, so all beams finish together at the last step and
early stopping never cuts the search short. generate() starts beams 1..B-1 at -1e9
(copies of beam 0 that only fill slots no real prefix can), so results below -1e8 are
filler: reported here as item -1, score -inf, as our search does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import torch

from alignrec.decode.beam import left_pad
from alignrec.decode.trie import CodeTrie

FILLER = -1e8


def prefix_allowed_tokens_fn(
    trie: CodeTrie, prompt_width: int, exclude: Sequence[Collection[int]] | None = None
) -> Callable[[int, torch.Tensor], list[int]]:
    """The constraint for one generate call whose prompts are padded to ``prompt_width``.

    ``exclude[b]`` are the items to skip for row ``b``. Answers are memoised per prefix
    (like LC-Rec's prefix dictionary), so the trie walk itself does not slow the peer down.
    """
    memo: dict[tuple[int, tuple[int, ...]], list[int]] = {}

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        key = (batch_id if exclude is not None else 0, tuple(input_ids[prompt_width:].tolist()))
        if key not in memo:
            memo[key] = trie.allowed_tokens(key[1], exclude[batch_id] if exclude is not None else ())
        return memo[key]

    return allowed


def generate_top_k(
    model: torch.nn.Module,
    prompts: list[list[int]],
    trie: CodeTrie,
    *,
    beams: int,
    k: int,
    pad_token_id: int,
    exclude: Sequence[Collection[int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Items [P, k] (-1 for filler or a sequence that is no item) and scores [P, k] from one generate call."""
    input_ids, mask = left_pad(prompts, pad_token_id)
    with torch.inference_mode():
        out = model.generate(
            input_ids, attention_mask=mask, num_beams=beams, num_return_sequences=k, max_new_tokens=trie.levels,
            do_sample=False, length_penalty=0.0, pad_token_id=pad_token_id,
            prefix_allowed_tokens_fn=prefix_allowed_tokens_fn(trie, input_ids.shape[1], exclude),
            output_scores=True, return_dict_in_generate=True,
        )
    generated = out.sequences[:, input_ids.shape[1] :].reshape(len(prompts), k, -1).cpu()
    items = trie.items_of(generated).numpy()
    scores = out.sequences_scores.view(len(prompts), k).float().cpu().numpy()
    filler = scores < FILLER
    items[filler] = -1
    scores[filler] = -np.inf
    return items, scores
