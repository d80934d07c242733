"""docs/config.md is the reference generated from config.py: regenerate it when a setting changes."""

from __future__ import annotations

from pathlib import Path

from alignrec.config_reference import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_the_config_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render() + "\n", (
        "docs/config.md is out of date: run `python -m alignrec.config_reference > docs/config.md`")


def test_every_section_and_key_is_in_the_reference() -> None:
    text = render()
    for key in ("`sasrec.temperature`", "`llm.lora.rank`", "`serve.threads`", "`eval.ks`", "`models`"):
        assert f"| {key} |" in text
    assert "| `sasrec.temperature` | `float` | `0.05` |" in text
