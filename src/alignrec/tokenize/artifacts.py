"""The tokenizer's output folder: write it atomically, read it back exactly.

::

    TOK_DIR/
      codes.json              {original item id: [c_0, ..., c_{L-1}]}
      index.json              {original item id: ["<a_12>", "<b_3>", ...]}  (LC-Rec / LETTER format)
      codes.npz               item_ids, titles, codes [N, L] int64 (dataset item order)
      codebooks.npz           level_0 ... level_{L-1}: [K, code_dim] float32
      quantizer.npz           learned arrays besides codebooks (RQ-VAE encoder/decoder; empty for RQ-KMeans)
      projection.npz          weight [L, code_dim, llm_dim], bias [L, llm_dim], input_scale, output_scale/shift
      token_embeddings.npz    embeddings [L*K, llm_dim] (row l*K+k = token (l, k)), tokens
      report.json             settings, quantizer, per-level stats, collisions, alignment, timings
      code_usage.png          items per code at each level

Arrays are stored without pickles, so loading gives back bit-identical values.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alignrec.errors import AlignrecError
from alignrec.io import atomic_path, read_json, write_json

FILES = ("codes.json", "index.json", "codes.npz", "codebooks.npz", "quantizer.npz",
         "projection.npz", "token_embeddings.npz", "report.json")
MAX_LEVELS = len(string.ascii_lowercase)


def token_names(levels: int, codebook_size: int) -> list[str]:
    """``<a_0> ... <a_{K-1}> <b_0> ...``: one token per (level, code), LC-Rec's naming."""
    if levels > MAX_LEVELS:
        raise AlignrecError(f"tokenize.levels={levels}: at most {MAX_LEVELS} levels are supported")
    return [f"<{string.ascii_lowercase[level]}_{code}>" for level in range(levels) for code in range(codebook_size)]


@dataclass
class TokenizerArtifact:
    item_ids: np.ndarray
    titles: np.ndarray
    codes: np.ndarray
    codebooks: list[np.ndarray]
    quantizer_state: dict[str, np.ndarray]
    projection: dict[str, np.ndarray]
    token_embeddings: np.ndarray
    tokens: list[str]
    report: dict[str, Any]

    @property
    def levels(self) -> int:
        return int(self.codes.shape[1])

    @property
    def codebook_size(self) -> int:
        return int(self.codebooks[0].shape[0])

    def item_tokens(self, row: int) -> list[str]:
        return [self.tokens[level * self.codebook_size + int(c)] for level, c in enumerate(self.codes[row])]


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def save_artifact(artifact: TokenizerArtifact, out: str | Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [str(i) for i in artifact.item_ids]
    _save_npz(out / "codes.npz", {"item_ids": np.asarray(ids, dtype=str),
                                  "titles": np.asarray(artifact.titles, dtype=str), "codes": artifact.codes})
    _save_npz(out / "codebooks.npz", {f"level_{i}": c for i, c in enumerate(artifact.codebooks)})
    _save_npz(out / "quantizer.npz", artifact.quantizer_state)
    _save_npz(out / "projection.npz", artifact.projection)
    _save_npz(out / "token_embeddings.npz", {"embeddings": artifact.token_embeddings,
                                             "tokens": np.asarray(artifact.tokens, dtype=str)})
    write_json(out / "codes.json", {i: row for i, row in zip(ids, artifact.codes.tolist(), strict=True)})
    write_json(out / "index.json", {i: artifact.item_tokens(r) for r, i in enumerate(ids)})
    write_json(out / "report.json", artifact.report)


def load_artifact(folder: str | Path) -> TokenizerArtifact:
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise AlignrecError(
            f"{folder}: not a tokenizer output (missing {', '.join(missing)}); "
            "create it with `alignrec tokenize --data DIR --sasrec RUN --out TOK_DIR`"
        )

    def npz(name: str) -> dict[str, np.ndarray]:
        with np.load(folder / name, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}

    codes, books, proj, emb = npz("codes.npz"), npz("codebooks.npz"), npz("projection.npz"), npz("token_embeddings.npz")
    return TokenizerArtifact(
        item_ids=codes["item_ids"],
        titles=codes["titles"],
        codes=codes["codes"],
        codebooks=[books[f"level_{i}"] for i in range(len(books))],
        quantizer_state=npz("quantizer.npz"),
        projection=proj,
        token_embeddings=emb["embeddings"],
        tokens=[str(t) for t in emb["tokens"]],
        report=read_json(folder / "report.json"),
    )
