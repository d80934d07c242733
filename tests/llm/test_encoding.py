"""Pieces -> ids and labels; packing keeps examples independent."""

from __future__ import annotations

import numpy as np
import torch

from alignrec.backbone import ByteTokenizer, tiny_random_llama
from alignrec.llm.encoding import IGNORE, Encoded, ExampleEncoder, collate, pack
from alignrec.llm.tasks.example import Example, item, text

CODES = np.array([[300, 310], [301, 311]])  # item -> its code token ids


def encoder() -> ExampleEncoder:
    return ExampleEncoder(ByteTokenizer(), CODES, eos_id=2, task_names=["sequential", "item_to_text"])


def test_items_become_code_ids_and_only_targets_are_labelled() -> None:
    encoded = encoder().encode([Example("sequential", [text("h:"), item(0), item(1, target=True)])])[0]
    h, colon = ByteTokenizer()(["h:"])[0]
    assert encoded.input_ids.tolist() == [h, colon, 300, 310, 301, 311]
    assert encoded.labels.tolist() == [IGNORE] * 4 + [301, 311]
    assert encoded.task == 0


def test_a_text_target_ends_with_a_labelled_eos() -> None:
    encoded = encoder().encode([Example("item_to_text", [item(1), text(" Hi", target=True)])])[0]
    assert encoded.input_ids.tolist()[-1] == 2 and encoded.labels.tolist()[-1] == 2
    assert encoded.labels.tolist()[:2] == [IGNORE, IGNORE] and encoded.task == 1


def test_prompt_ids_equal_the_training_context() -> None:
    example = Example("sequential", [text("h:"), item(0), item(1, target=True)])
    prompt = Example("sequential", [text("h:"), item(0)])
    assert encoder().prompt_ids(prompt) == encoder().encode([example])[0].input_ids[:4].tolist()


def test_packing_fills_rows_and_restarts_positions() -> None:
    parts = [Encoded(np.arange(n) + 10, np.full(n, 7), 0) for n in (3, 4, 2, 6)]
    rows = pack(parts, max_tokens=7)
    assert [len(r.input_ids) for r in rows] == [7, 2, 6]
    assert rows[0].position_ids.tolist() == [0, 1, 2, 0, 1, 2, 3]
    long = pack([Encoded(np.arange(9), np.arange(9), 0)], max_tokens=5)
    assert long[0].input_ids.tolist() == [4, 5, 6, 7, 8]  # the end (where targets are) is kept


def test_packed_examples_do_not_attend_to_each_other() -> None:
    model = tiny_random_llama(0).eval()
    a = Encoded(np.array([5, 6, 7, 8]), np.full(4, IGNORE), 0)
    b = Encoded(np.array([9, 10, 11]), np.full(3, IGNORE), 0)
    batch = collate(pack([a, b], max_tokens=16) + pack([b], max_tokens=16), pad_id=0)
    assert batch["num_tokens"].item() == 10 and batch["num_examples"].item() == 3
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        alone = model(torch.tensor([[9, 10, 11]])).logits
    assert torch.allclose(packed[0, 4:7], alone[0], atol=1e-5)
    assert torch.allclose(packed[1, :3], alone[0], atol=1e-5)
    assert (batch["labels"][1, 3:] == IGNORE).all()
