"""Trie-constrained beam search: a history prompt -> the top-k real items with scores.

Why not ``generate(prefix_allowed_tokens_fn=...)`` (LC-Rec, MiniOneRec): it prefills
every prompt once per beam and calls a Python function per beam per step. Here each
prompt is prefilled once and every step restricts the logits with tensor lookups into the
compiled :class:`CodeTrie`. The search is the same as transformers' beam search with
``length_penalty=0`` (at each level keep the ``beams`` best prefixes by summed
log-probability over the full vocabulary), so the results match it; no prefix outside
the trie can ever be kept. A model trained with ``llm.code_softmax: level`` scores each code
over its level's codes instead, the distribution it was trained on (``alignrec.llm.loss``), and
can skip the model's 49k-row head for its 1,024 code rows (:mod:`alignrec.decode.scoring`).

Why a shared prompt cache: copying the prompt's KV cache to every beam, and moving it at
every level, was most of a CPU decoding step. Where the model's attention takes a custom
mask over a full cache (SDPA, no sliding window), the beams share their prompt's one
cache: each level appends the beams' code tokens after it as a tree, and a 4D mask lets
each token see the prompt and its own ancestors only, so nothing is ever copied. Other
models (sliding windows, flash-attention kernels) get each beam its own copy.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Collection, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from alignrec.decode.scoring import CodeHead, CodeScorer
from alignrec.decode.trie import CodeTrie
from alignrec.errors import AlignrecError


def constrained_beam_search(
    model: torch.nn.Module,
    prompts: list[list[int]],
    trie: CodeTrie,
    *,
    beams: int,
    k: int,
    pad_token_id: int,
    exclude: Sequence[Collection[int]] | None = None,
    batch_size: int = 8,
    progress: bool = False,
    only: Sequence[Collection[int]] | None = None,
    shared_cache: bool = True,
    softmax: str = "vocabulary",
    code_head: CodeHead | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Items [len(prompts), k] int64 and their scores [len(prompts), k] float32, best first.

    A score is the sum of the log-probabilities of the item's code tokens after the
    prompt. ``exclude[i]`` are item ids never to return for prompt ``i``; ``only[i]``, when
    given, the only items prompt ``i`` may return (its search follows a trie of those alone,
    as a cascade over another model's candidates does). Rows hold -1 (score -inf) only where
    fewer than ``k`` items are left to recommend. ``shared_cache``: the beams share their prompt's
    KV cache where :func:`shares_prompt_cache` allows (off: each beam gets a copy; the same lists).
    ``softmax``: what a code's log-probability is normalised over, ``vocabulary`` or its ``level``'s codes;
    ``code_head`` (``level`` only): the logits of the code tokens alone from the last hidden state, so
    the model's whole head is never computed (:mod:`alignrec.decode.scoring`).
    """
    items, scores, _ = search_and_score(model, prompts, trie, beams=beams, k=k, pad_token_id=pad_token_id,
                                        exclude=exclude, batch_size=batch_size, progress=progress, only=only,
                                        shared_cache=shared_cache, softmax=softmax, code_head=code_head)
    return items, scores


def search_and_score(
    model: torch.nn.Module,
    prompts: list[list[int]],
    trie: CodeTrie,
    *,
    beams: int,
    k: int,
    pad_token_id: int,
    exclude: Sequence[Collection[int]] | None = None,
    batch_size: int = 8,
    progress: bool = False,
    only: Sequence[Collection[int]] | None = None,
    candidates: np.ndarray | None = None,
    shared_cache: bool = True,
    softmax: str = "vocabulary",
    code_head: CodeHead | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`constrained_beam_search`, and the exact score of every item in ``candidates``
    ([len(prompts), C], -1 pads; score -inf there) after the same prompts, from the same prefill.

    Why one pass: a candidate the beams pruned (another model's pick) still needs the LLM's
    log-probability of its whole code sequence. Scoring it reuses the prompt's KV cache and
    feeds all of its code tokens at once, so it costs one short forward, not a second prefill.
    """
    if beams < 1 or not 1 <= k <= beams:
        raise AlignrecError(f"beam search: need 1 <= k <= beams, got k={k}, beams={beams}; raise beams or lower k")
    cache_name, keeps_logits = _forward_names(model)
    scorer = CodeScorer.build(softmax, code_head, keeps_logits)
    if batch_size < 1:
        raise AlignrecError(f"beam search: batch_size must be >= 1, got {batch_size}")
    for name, rows in (("exclude", exclude), ("only", only), ("candidates", candidates)):
        if rows is not None and len(rows) != len(prompts):
            raise AlignrecError(f"beam search: {name} has {len(rows)} rows for {len(prompts)} prompts")
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=np.int64).reshape(len(prompts), -1)
        if candidates.size and (candidates.max() >= trie.num_items or candidates.min() < -1):
            raise AlignrecError(f"beam search: candidates must be item ids in [0, {trie.num_items}) or -1")
    empty = [i for i, prompt in enumerate(prompts) if len(prompt) == 0]
    if empty:
        raise AlignrecError(f"beam search: prompt {empty[0]} is empty; every prompt needs at least one token")
    items = np.full((len(prompts), k), -1, dtype=np.int64)
    scores = np.full((len(prompts), k), -np.inf, dtype=np.float32)
    candidate_scores = None if candidates is None else np.full(candidates.shape, -np.inf, dtype=np.float32)
    device = next(model.parameters()).device
    on_device = trie.to(device)
    shared = shared_cache and shares_prompt_cache(model)
    # Prompts of similar length share a batch: less padding to compute.
    order = np.argsort([len(prompt) for prompt in prompts], kind="stable")
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for rows in tqdm(batches, desc="beam search", unit="batch", disable=not progress, leave=False):
                if only is not None:
                    alive = on_device.allowed_counts([only[row] for row in rows],
                                                     None if exclude is None else [exclude[row] for row in rows])
                elif exclude is None:
                    alive = on_device.leaf_count.expand(len(rows), -1)
                else:
                    alive = on_device.alive_counts([exclude[row] for row in rows])
                asked = None if candidates is None else torch.as_tensor(candidates[rows], device=device)
                found, found_scores, scored = _search(model, [prompts[row] for row in rows], on_device, alive,
                                                      beams, pad_token_id, asked, shared, scorer, cache_name)
                items[rows] = found[:, :k].cpu().numpy()
                scores[rows] = found_scores[:, :k].float().cpu().numpy()
                if candidate_scores is not None and scored is not None:
                    candidate_scores[rows] = scored.float().cpu().numpy()
    finally:
        model.train(was_training)
    return items, scores, candidate_scores


def left_pad(prompts: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [P, longest] padded on the left, and the attention mask (1 = real token)."""
    width = max(len(prompt) for prompt in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.int64)
    mask = torch.zeros((len(prompts), width), dtype=torch.int64)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.as_tensor(prompt, dtype=torch.int64)
        mask[row, width - len(prompt) :] = 1
    return input_ids, mask


def _forward_names(model: torch.nn.Module) -> tuple[str, bool]:
    """The model's cache keyword (``cache`` from transformers 5.x, else ``past_key_values``)
    and whether it can compute logits for the last position only. A peft wrapper's own
    ``forward`` passes keywords through to the base model, so the base model's signature decides."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def shares_prompt_cache(model: torch.nn.Module) -> bool:
    """Whether the beams can share their prompt's cache: SDPA attention (it takes a boolean 4D
    mask as given), or one that says it is SDPA wherever a mask is given (``sdpa_masks``, as training's
    segment attention does), over a cache that keeps every position (no sliding window)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    config = model.config
    implementation = getattr(config, "_attn_implementation", None)
    takes_sdpa_masks = implementation == "sdpa" or getattr(
        ALL_ATTENTION_FUNCTIONS.get(implementation), "sdpa_masks", False)
    return takes_sdpa_masks and getattr(config, "sliding_window", None) is None


def _search(
    model: torch.nn.Module,
    prompts: list[list[int]],
    trie: CodeTrie,
    alive: torch.Tensor,
    beams: int,
    pad_token_id: int,
    candidates: torch.Tensor | None,
    shared: bool,
    scorer: CodeScorer,
    cache_name: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One batch: items [P, beams] (-1 where no item) and scores [P, beams], best first, and the
    scores of ``candidates`` [P, C] (None when none are asked)."""
    from transformers import DynamicCache

    device = trie.children.device
    batch = len(prompts)
    input_ids, mask = (t.to(device) for t in left_pad(prompts, pad_token_id))
    lengths = mask.sum(dim=1)
    # Left padding: positions count real tokens only, as generate() computes them.
    positions = (mask.cumsum(dim=1) - 1).masked_fill(mask == 0, 1)
    cache = DynamicCache(config=model.config)
    logits = scorer.logits(model, last=True, input_ids=input_ids, attention_mask=mask,
                           position_ids=positions, use_cache=True, **{cache_name: cache})[:, -1, :]
    scorer.check_vocabulary(logits, trie)
    # What each beam's next token may attend to, besides itself (shared cache only): its prompt.
    seen = mask.bool()[:, None, :].expand(batch, beams, -1)
    scored, prompt_logits = None, logits
    asked = candidates is not None and candidates.shape[1] > 0
    if asked and not shared:  # scored from a copy of the prompts' cache; shared: after the search
        scored = _score_candidates(model, copy.deepcopy(cache), logits, mask, lengths, trie, candidates, cache_name,
                                   scorer)

    size, dead = trie.codebook_size, trie.dead
    node = torch.zeros((batch, 1), dtype=torch.int64, device=device)  # every prompt starts at the root
    # A prompt whose every item is excluded has no live beam from the start.
    score = torch.where(alive[:, :1] > 0, 0.0, -torch.inf).float()
    rows = torch.arange(batch, device=device)[:, None]
    for level in range(trie.levels):
        tokens = trie.code_token_ids[level]
        log_probs = scorer.log_probs(logits, trie, level)  # [batch * live, K]
        child = trie.children[node]  # [batch, live, K]
        valid = alive.gather(1, child.flatten(1)).view_as(child) > 0
        stuck = torch.isfinite(score) & ~valid.any(dim=-1)
        if stuck.any():
            row, beam = (int(i) for i in stuck.nonzero()[0])
            raise AlignrecError(
                f"beam search: prompt {row}, beam {beam} has no valid code at level {level}; "
                "the trie is inconsistent (rebuild it with CodeTrie.build)"
            )
        extended = torch.where(valid, score[..., None] + log_probs.view_as(child), -torch.inf).flatten(1)
        if torch.isnan(extended).any():
            raise AlignrecError(f"beam search: the model gave NaN log-probabilities at level {level}")
        keep = min(beams, extended.shape[1])
        score, picked = extended.topk(keep, dim=1)
        source, code = picked // size, picked % size
        node = torch.where(torch.isfinite(score), child.flatten(1).gather(1, picked), dead)
        if keep < beams:  # fewer candidates than beams: the rest are dead beams
            fill = beams - keep
            score = torch.cat([score, score.new_full((batch, fill), -torch.inf)], dim=1)
            node = torch.cat([node, node.new_full((batch, fill), dead)], dim=1)
            source = torch.cat([source, source.new_zeros((batch, fill))], dim=1)
            code = torch.cat([code, code.new_zeros((batch, fill))], dim=1)
        if level == trie.levels - 1:
            break
        if shared:  # each beam's code token sees what its source beam saw, and itself
            seen = seen.gather(1, source[..., None].expand(-1, -1, seen.shape[2]))
            seen = torch.cat([seen, torch.eye(beams, dtype=torch.bool, device=device).expand(batch, -1, -1)], dim=2)
            logits = scorer.logits(model, input_ids=tokens[code], attention_mask=seen[:, None], use_cache=True,
                                   position_ids=(lengths + level)[:, None].expand(-1, beams), **{cache_name: cache})
            logits = logits.flatten(0, 1)  # [batch * beams, vocab]
            continue
        # Move each beam's KV cache to its new slot (the first time, copy the prompt's), feed its code.
        width_before = 1 if level == 0 else beams
        cache.reorder_cache((rows * width_before + source).flatten())
        if level == 0:
            mask = mask.repeat_interleave(beams, dim=0)
            lengths = lengths.repeat_interleave(beams)
        mask = torch.cat([mask, mask.new_ones((batch * beams, 1))], dim=1)
        logits = scorer.logits(model, input_ids=tokens[code].view(-1, 1), attention_mask=mask,
                               position_ids=(lengths + level)[:, None], use_cache=True, **{cache_name: cache})[:, -1, :]

    items = trie.leaf_item[node]
    live = torch.isfinite(score)
    if (items[live] < 0).any():
        raise AlignrecError("beam search: a finished beam is not an item; the trie is inconsistent")
    found = torch.where(live, items, -1)
    if asked and shared:
        scored = _score_candidates_shared(model, cache, prompt_logits, mask, lengths, trie, candidates, cache_name,
                                          found, score, scorer)
    return found, score, scored


def _score_candidates_shared(
    model: torch.nn.Module,
    cache: object,
    first_logits: torch.Tensor,
    mask: torch.Tensor,
    lengths: torch.Tensor,
    trie: CodeTrie,
    candidates: torch.Tensor,
    cache_name: str,
    found: torch.Tensor,
    found_scores: torch.Tensor,
    scorer: CodeScorer,
) -> torch.Tensor:
    """:func:`_score_candidates` after the search, over the same cache: a candidate the beams found
    ([P, beams] ``found`` items, -1 none) has its beam's score, which is its exact score; the others'
    first ``levels - 1`` code tokens are appended after the cache at once, each seeing its prompt and
    its own earlier codes only (a 4D mask), so nothing is copied and the beams' tokens are ignored."""
    match = (candidates[:, :, None] == found[:, None, :]) & (found[:, None, :] >= 0)  # [P, C, beams]
    result = torch.where(match, found_scores[:, None, :], -torch.inf).amax(dim=2)
    todo = (candidates >= 0) & ~match.any(dim=2)
    width = int(todo.sum(dim=1).max())
    if width == 0:
        return result
    # Each row's candidates still to score first, as few columns as the busiest row needs.
    order = torch.argsort(todo.int(), dim=1, descending=True, stable=True)[:, :width]
    pending = todo.gather(1, order)
    exact = _append_and_score(model, cache, first_logits, mask, lengths, trie,
                              torch.where(pending, candidates.gather(1, order), -1), cache_name, scorer)
    return result.scatter(1, order, torch.where(pending, exact, result.gather(1, order)))


def _append_and_score(
    model: torch.nn.Module,
    cache: object,
    first_logits: torch.Tensor,
    mask: torch.Tensor,
    lengths: torch.Tensor,
    trie: CodeTrie,
    candidates: torch.Tensor,
    cache_name: str,
    scorer: CodeScorer,
) -> torch.Tensor:
    """[P, C] the exact scores of ``candidates`` (-1 pads: -inf) from one forward of their code
    tokens appended after ``cache``, which holds the prompts (``mask``) and then anything unseen."""
    batch, width = candidates.shape
    device = candidates.device
    tokens = _candidate_tokens(trie, candidates)  # [P, C, L]
    steps, later = trie.levels - 1, None
    if steps:
        own = torch.ones((steps, steps), dtype=torch.bool, device=device).tril()
        block = torch.block_diag(*[own] * width)  # [C * steps, C * steps]
        prompt = torch.zeros((batch, cache.get_seq_length()), dtype=torch.bool, device=device)
        prompt[:, : mask.shape[1]] = mask.bool()
        attend = torch.cat([prompt[:, None, :].expand(-1, width * steps, -1), block.expand(batch, -1, -1)], dim=2)
        positions = lengths[:, None] + torch.arange(steps, device=device).repeat(width)[None, :]
        later = scorer.logits(model, input_ids=tokens[..., :steps].reshape(batch, -1), attention_mask=attend[:, None],
                              position_ids=positions, use_cache=True, **{cache_name: cache})
    return _summed_scores(trie, candidates, first_logits, later, scorer)


def _candidate_tokens(trie: CodeTrie, candidates: torch.Tensor) -> torch.Tensor:
    """[P, C, L] the code tokens of each candidate item (those of item 0 at -1 pads)."""
    codes = trie.codes[candidates.clamp(min=0)]
    return trie.code_token_ids[torch.arange(trie.levels, device=codes.device), codes]


def _summed_scores(
    trie: CodeTrie, candidates: torch.Tensor, first_logits: torch.Tensor, later_logits: torch.Tensor | None,
    scorer: CodeScorer,
) -> torch.Tensor:
    """[P, C] each candidate's summed code log-probabilities (-inf at -1 pads), normalised as the beam
    search normalises them: its first code under its prompt's last logits [P, vocab], the others under
    ``later_logits`` (any shape flattening to [P * C * (L - 1), vocab], levels 1.. in order; None for
    one level)."""
    codes = trie.codes[candidates.clamp(min=0)]  # [P, C, L]
    total = scorer.log_probs(first_logits, trie, 0).gather(1, codes[..., 0])  # [P, C]
    if later_logits is not None:
        later = later_logits.reshape(-1, later_logits.shape[-1])
        levels = torch.arange(1, trie.levels, device=later.device).repeat(later.shape[0] // (trie.levels - 1))
        picked = scorer.log_probs(later, trie, levels).gather(1, codes[..., 1:].reshape(-1, 1))
        total = total + picked.view(*candidates.shape, -1).sum(dim=2)
    return torch.where(candidates >= 0, total, -torch.inf)


def _score_candidates(
    model: torch.nn.Module,
    cache: object,
    first_logits: torch.Tensor,
    mask: torch.Tensor,
    lengths: torch.Tensor,
    trie: CodeTrie,
    candidates: torch.Tensor,
    cache_name: str,
    scorer: CodeScorer,
) -> torch.Tensor:
    """[P, C] summed code log-probabilities of each candidate after its prompt (-inf at -1 pads).

    ``cache`` is a copy of the prompts' cache (consumed); ``first_logits`` their last logits. The
    first code's log-probability comes from those; the others from one forward that feeds each
    candidate's first ``levels - 1`` code tokens after its prompt's cache, the same distribution
    the beam search scores with, so a beam's score and its item's agree.
    """
    batch, width = candidates.shape
    tokens = _candidate_tokens(trie, candidates)  # [P, C, L]
    steps, later = trie.levels - 1, None
    if steps:
        rows = torch.arange(batch, device=tokens.device).repeat_interleave(width)
        cache.reorder_cache(rows)
        wide_mask = torch.cat([mask[rows], mask.new_ones((len(rows), steps))], dim=1)
        positions = lengths[rows][:, None] + torch.arange(steps, device=tokens.device)[None, :]
        later = scorer.logits(model, input_ids=tokens[..., :steps].reshape(-1, steps), attention_mask=wide_mask,
                              position_ids=positions, use_cache=True, **{cache_name: cache})  # [P * C, steps, vocab]
    return _summed_scores(trie, candidates, first_logits, later, scorer)
