"""The tokenizer stage: dataset (+ SASRec run) -> code tokens with LLM embeddings.

features -> quantizer.fit -> residual codes -> collision resolution ->
alignment -> artifacts + report + plot. Deterministic for a seed: k-means,
RQ-VAE and the projection draw from seeded generators only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from alignrec.backbone import Backbone, load_backbone
from alignrec.config import TokenizeConfig, to_dict
from alignrec.data.dataset import SequenceDataset
from alignrec.tokenize.alignment import align_codes
from alignrec.tokenize.artifacts import TokenizerArtifact, save_artifact, token_names
from alignrec.tokenize.collisions import collision_stats, resolve_collisions
from alignrec.tokenize.features import build_features
from alignrec.tokenize.metrics import level_stats, neighbour_prefix_agreement, published_comparison
from alignrec.tokenize.quantizers import make_quantizer
from alignrec.tokenize.usage_plot import plot_code_usage

console = Console(stderr=True)


def tokenize_dataset(
    dataset: SequenceDataset,
    sasrec_dir: str | Path | None,
    config: TokenizeConfig,
    seed: int,
    out: str | Path,
    backbone: Backbone | None = None,
    text_model_dir: Path | None = None,
) -> TokenizerArtifact:
    """Tokenize every item of ``dataset`` and write the artifact folder ``out``."""
    out = Path(out)
    token_names(config.levels, config.codebook_size)  # validates levels before any work
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[f"{name}_s"] = now - clock
        clock = now

    features = build_features(dataset, sasrec_dir, config, text_model_dir)
    for note in features.notes:
        console.print(f"[yellow]note[/]: {note}")
    lap("features")

    quantizer = make_quantizer(config, seed)
    fit_log = quantizer.fit(features.vectors)
    raw_codes, last_residual = quantizer.encode(features.vectors)
    lap("quantize")

    before = collision_stats(raw_codes)
    codes, resolution = resolve_collisions(raw_codes, last_residual, quantizer.codebooks[-1])
    after = collision_stats(codes)
    lap("collisions")

    backbone = backbone or load_backbone(config.align.llm, seed)
    lap("load_llm")
    titles = [str(t) for t in dataset.item_text["title"]] if "title" in dataset.item_text else None
    alignment = align_codes(quantizer.codebooks, codes, backbone, titles, config.align, seed)
    lap("align")

    report: dict[str, Any] = {
        "dataset": {"name": dataset.name, "items": dataset.num_items, "has_text": dataset.has_text},
        "seed": seed,
        "config": to_dict(config),
        "features": {"kind": features.kind, "dim": int(features.vectors.shape[1]),
                     "notes": features.notes, **features.info},
        "quantizer": {"name": quantizer.name, "settings": quantizer.settings(), "fit": fit_log},
        "levels_before_resolution": level_stats(raw_codes, config.codebook_size),
        "levels": level_stats(codes, config.codebook_size),
        "collisions": {"before": before, "after": after, "resolution": {
            "method": "min-cost assignment of colliding items to distinct last-level codes", **resolution}},
        "alignment": {"llm": backbone.source, **alignment.log},
    }
    if features.text_vectors is not None:
        report["semantics"] = {"first_code_vs_text_neighbours": neighbour_prefix_agreement(
            features.text_vectors, codes[:, 0])}
    if dataset.published_codes:
        comparison = published_comparison(dataset.published_codes, dataset.item_ids, codes)
        if comparison is not None:
            report["published_codes"] = comparison
    timings["total_s"] = time.perf_counter() - started
    report["timings"] = timings

    artifact = TokenizerArtifact(
        item_ids=np.asarray(dataset.item_ids, dtype=str),
        titles=np.asarray([dataset.title(i) for i in range(dataset.num_items)], dtype=str),
        codes=codes,
        codebooks=quantizer.codebooks,
        quantizer_state=quantizer.state(),
        projection=alignment.projection,
        token_embeddings=alignment.token_embeddings,
        tokens=token_names(config.levels, config.codebook_size),
        report=report,
    )
    save_artifact(artifact, out)
    plot_code_usage(codes, config.codebook_size, out / "code_usage.png",
                    f"{dataset.name}: {quantizer.name}, {features.kind} features")
    return artifact


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few human lines for the terminal."""
    c = report["collisions"]
    lines = [
        f"{report['dataset']['name']}: {report['dataset']['items']} items, features={report['features']['kind']}, "
        f"quantizer={report['quantizer']['name']}",
        f"collision rate {c['before']['collision_rate']:.4f} -> {c['after']['collision_rate']:.4f} "
        f"({c['resolution']['items_moved']} items moved on the last level)",
    ]
    for row in report["levels"]:
        lines.append(f"  level {row['level']}: utilisation {row['utilisation']:.3f}, perplexity {row['perplexity']:.1f}")
    if "semantics" in report:
        s = report["semantics"]["first_code_vs_text_neighbours"]
        lines.append(f"text neighbours sharing the first code: {s['observed']:.3f} (chance {s['chance']:.3f})")
    lines.append(f"wall time {report['timings']['total_s']:.1f} s")
    return lines
