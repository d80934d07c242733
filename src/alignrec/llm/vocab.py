"""One new token per (level, code), appended after the backbone's vocabulary.

The new rows start either from the tokenizer's aligned embeddings (the code tokens
already sit where the LLM represents similar items) or, for the ablation, from random
vectors with the vocabulary's per-dimension mean and spread. With untied input and
output embeddings the output head's new rows get the same start; with tied ones they
are the same matrix. Resizing skips transformers' mean-resizing (a covariance over
the whole vocabulary, slow and pointless when we overwrite the rows anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from alignrec.errors import AlignrecError

INITS = ("aligned", "random")


@dataclass(frozen=True)
class CodeVocabulary:
    base_vocab: int
    """Rows before the code tokens; code (level l, code k) is token ``base_vocab + l * K + k``."""
    levels: int
    codebook_size: int
    names: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.levels * self.codebook_size

    @property
    def token_ids(self) -> np.ndarray:
        """[levels, codebook_size]: the LLM token id of each code."""
        return self.base_vocab + np.arange(self.size).reshape(self.levels, self.codebook_size)

    def item_token_ids(self, codes: np.ndarray) -> np.ndarray:
        """Codes [N, levels] -> token ids [N, levels]."""
        return self.base_vocab + np.arange(self.levels) * self.codebook_size + np.asarray(codes)

    def name(self, token_id: int) -> str:
        return self.names[token_id - self.base_vocab]


def ties_embeddings(model: torch.nn.Module) -> bool:
    output = model.get_output_embeddings()
    return output is not None and output.weight is model.get_input_embeddings().weight


def random_rows(reference: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` rows drawn per dimension from the reference rows' mean and spread."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, reference.shape[1], generator=generator)
    return reference.mean(0) + noise * reference.std(0)


def add_code_tokens(
    model: torch.nn.Module,
    names: list[str],
    levels: int,
    codebook_size: int,
    init: str,
    aligned: np.ndarray | None = None,
    seed: int = 0,
) -> CodeVocabulary:
    """Grow the embeddings by ``levels * codebook_size`` rows and initialise them."""
    if init not in INITS:
        raise AlignrecError(f"llm.token_init={init!r}: choose one of {', '.join(INITS)}")
    count = levels * codebook_size
    embeddings = model.get_input_embeddings().weight
    base = int(embeddings.shape[0])
    if init == "aligned":
        if aligned is None or aligned.shape != (count, embeddings.shape[1]):
            shape = None if aligned is None else aligned.shape
            raise AlignrecError(
                f"llm.token_init=aligned: the tokenizer's token_embeddings.npz has shape {shape}, the LLM "
                f"needs ({count}, {embeddings.shape[1]}); tokenize with the same backbone (tokenize.align.llm)"
            )
        rows = torch.from_numpy(np.asarray(aligned, dtype=np.float32))
    else:
        rows = random_rows(embeddings.detach().float(), count, seed)
    tied = ties_embeddings(model)
    model.resize_token_embeddings(base + count, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[base:] = rows.to(embeddings.dtype)
        if not tied:
            output = model.get_output_embeddings()
            output.weight[base:] = rows.to(output.weight.dtype)
            if getattr(output, "bias", None) is not None:
                output.bias[base:] = 0
    return CodeVocabulary(base, levels, codebook_size, tuple(names))
