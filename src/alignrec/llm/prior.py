"""A popularity prior on the code tokens' logits: the LLM starts from what MostPop knows.

A fresh code token knows nothing of how often its items are chosen, and a few
hundred training steps teach the LLM the user-specific part slowly and the
popular part not much faster: an undertrained LLM ranks below the popularity list.
So the code tokens' logits get a fixed bias: at each level, each code's
log-frequency among the training interactions (add-one smoothed), centred on the
level's mean so the code tokens as a whole keep their weight against the text
vocabulary, times ``llm.code_prior``. Training sees the same bias as decoding (both read
the head's logits), so the fine-tuning learns what the prior does not already say.
Only the training split counts: no validation or test target reaches it.
"""

from __future__ import annotations

import numpy as np
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import train_sequence
from alignrec.llm.vocab import CodeVocabulary


def training_counts(dataset: SequenceDataset) -> np.ndarray:
    """Each item's interactions in the training split (validation and test targets left out)."""
    items = [train_sequence(dataset, user) for user in range(dataset.num_users)]
    return np.bincount(np.concatenate(items) if items else np.empty(0, np.int64), minlength=dataset.num_items)


def code_log_prior(codes: np.ndarray, counts: np.ndarray, codebook_size: int) -> np.ndarray:
    """[levels, codebook_size]: per level, the centred log of each code's add-one-smoothed share of
    the interactions with items carrying that code."""
    codes = np.asarray(codes)
    prior = np.empty((codes.shape[1], codebook_size), dtype=np.float64)
    for level in range(codes.shape[1]):
        per_code = np.bincount(codes[:, level], weights=counts, minlength=codebook_size) + 1.0
        logs = np.log(per_code / per_code.sum())
        prior[level] = logs - logs.mean()
    return prior


PRIOR = "code_prior"
"""The buffer on the output head that holds the bias (it moves with the model between devices)."""


def _add_prior(module: torch.nn.Module, _: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return output + getattr(module, PRIOR).to(output.dtype)


def attach_prior(model: torch.nn.Module, vocab: CodeVocabulary, prior: np.ndarray, strength: float) -> None:
    """Add ``strength * prior`` to the logits of the code tokens, on the head the model computes them with.

    A forward hook, not the head's ``bias``: peft's trainable-token wrapper of a linear head (which
    training uses) ignores a bias, so training would not see what decoding does. Attach it after
    wrapping (training) or after merging (a loaded run); it is rebuilt from the data, never saved.
    """
    head = model.get_output_embeddings()
    if hasattr(head, PRIOR):
        raise RuntimeError("the code prior is already attached to this model")
    bias = torch.zeros(head.weight.shape[0], dtype=torch.float32, device=head.weight.device)
    bias[torch.as_tensor(vocab.token_ids.ravel())] = torch.as_tensor(strength * prior.ravel(), dtype=torch.float32,
                                                                     device=head.weight.device)
    head.register_buffer(PRIOR, bias, persistent=False)
    head.register_forward_hook(_add_prior)
