"""Choose, build and rebuild a residual quantizer by name."""

from __future__ import annotations

from typing import Any

import numpy as np

from alignrec.config import RQVAEConfig, TokenizeConfig
from alignrec.errors import AlignrecError
from alignrec.tokenize import rqkmeans, rqvae
from alignrec.tokenize.residual import Quantizer

QUANTIZERS = (rqkmeans.NAME, rqvae.NAME)


def make_quantizer(config: TokenizeConfig, seed: int) -> Quantizer:
    if config.levels < 1 or config.codebook_size < 2:
        raise AlignrecError(
            f"tokenize.levels={config.levels}, tokenize.codebook_size={config.codebook_size}: "
            "need at least 1 level and 2 codes per level"
        )
    if config.quantizer == rqkmeans.NAME:
        return rqkmeans.RQKMeans(config.levels, config.codebook_size, config.kmeans_iters, seed, config.balanced)
    if config.quantizer == rqvae.NAME:
        return rqvae.RQVAE(config.levels, config.codebook_size, config.rqvae, config.kmeans_iters, seed)
    raise AlignrecError(f"tokenize.quantizer: {config.quantizer!r}; choose {' or '.join(QUANTIZERS)}")


def restore_quantizer(
    name: str, settings: dict[str, Any], codebooks: list[np.ndarray], state: dict[str, np.ndarray]
) -> Quantizer:
    """Rebuild a saved quantizer exactly (used when an artifact is loaded)."""
    quantizer: Quantizer
    if name == rqkmeans.NAME:
        quantizer = rqkmeans.RQKMeans(
            settings["levels"], settings["codebook_size"], settings["kmeans_iters"], settings["seed"],
            settings["balanced"],
        )
        quantizer.codebooks = codebooks
        return quantizer
    if name == rqvae.NAME:
        config = RQVAEConfig(
            latent_dim=settings["latent_dim"], hidden=list(settings["hidden"]), epochs=settings["epochs"],
            batch_size=settings["batch_size"], lr=settings["lr"], beta=settings["beta"],
            dead_code_reset=settings["dead_code_reset"],
        )
        vae = rqvae.RQVAE(settings["levels"], settings["codebook_size"], config,
                          settings["kmeans_init_iters"], settings["seed"])
        vae.load_state(settings["in_dim"], state)
        return vae
    raise AlignrecError(f"saved quantizer {name!r} is unknown to this alignrec; re-run tokenize")
