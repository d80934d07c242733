"""Each task family on a tiny fixture: prompt, target, and no held-out target anywhere."""

from __future__ import annotations

import numpy as np
import pytest

from alignrec.config import TasksConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import eval_users
from alignrec.llm.tasks import TASKS, build_mixture
from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.tasks.negative import CHOOSE, sample_unseen
from alignrec.llm.tasks.sequential import recommendation_prompt
from tests.conftest import make_dataset

MOVIES = {
    "m0": {"title": "Alien (1979)", "genres": "Horror, Sci-Fi"},
    "m1": {"title": "Heat (1995)", "genres": "Action, Crime"},
    "m2": {"title": "Casper (1995)", "genres": "Comedy"},
    "m3": {"title": "Fargo (1996)", "genres": "Crime, Drama"},
    "m4": {"title": "Clueless (1995)", "genres": "Comedy, Romance"},
    "m5": {"title": "Babe (1995)", "genres": "Children's, Comedy"},
}


@pytest.fixture
def movies() -> SequenceDataset:
    return make_dataset(
        {"u0": ["m0", "m1", "m2", "m3", "m4", "m5"], "u1": ["m2", "m4", "m5", "m0"], "u2": ["m3", "m1", "m0"]},
        item_text=MOVIES,
    )


def name_of(dataset: SequenceDataset):
    return lambda i: f"<{dataset.item_ids[i]}>"


def build(dataset: SequenceDataset, task: str, history: int = 3, seed: int = 0):
    ctx = TaskContext.from_dataset(dataset, history, negatives=2)
    return TASKS[task].build(ctx, np.random.default_rng(seed))


def test_windows_predict_every_item_but_the_first_exactly_once(movies: SequenceDataset) -> None:
    ctx = TaskContext.from_dataset(movies, history=2, negatives=2)
    sequence = np.arange(10)
    predicted = [int(i) for w in ctx.windows(sequence) for i in w[1:]]
    assert predicted == list(range(1, 10))
    assert all(2 <= len(w) <= 3 for w in ctx.windows(sequence))


def test_sequential_labels_every_window_item_after_the_first(movies: SequenceDataset) -> None:
    examples = build(movies, "sequential", history=3)
    u0 = [e for e in examples if e.context_items()[0] == movies.item_index()["m0"]]
    assert len(u0) == 1  # u0 trains on m0..m3 (m4 valid, m5 test): one window of history + 1 items
    context, target = u0[0].render(name_of(movies))
    assert context.endswith("<m0>") and target == "<m1>|<m2>|<m3>"


def test_recommendation_prompt_matches_the_training_context(movies: SequenceDataset) -> None:
    prompt = recommendation_prompt(np.array([0, 1, 2, 3]), size=3)
    context, target = prompt.render(name_of(movies))
    assert context == "A user's items, oldest first:<m1><m2><m3>" and target == ""


def test_item_text_both_directions(movies: SequenceDataset) -> None:
    to_text = build(movies, "item_to_text")
    context, target = to_text[0].render(name_of(movies))
    assert "<m0>" in context and target == " Alien"  # the year is a separate facet
    to_item = build(movies, "text_to_item")
    context, target = to_item[3].render(name_of(movies))
    assert "Fargo" in context and target == "<m3>"


def test_query_names_the_items_facets(movies: SequenceDataset) -> None:
    examples = build(movies, "query_to_item")
    context, target = examples[0].render(name_of(movies))
    assert target == "<m0>" and "1970s" in context and ("Horror" in context or "Sci-Fi" in context)


def test_preference_summarises_window_genres(movies: SequenceDataset) -> None:
    examples = build(movies, "preference", history=5)
    context, target = examples[0].render(name_of(movies))
    # u0's training window m0..m3: Crime twice, every other genre once; three films of the 1990s
    assert examples[0].user == 0 and target == " Crime, Horror and Sci-Fi; mostly from the 1990s"


def test_negative_sampler_never_returns_seen_items() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        drawn = sample_unseen(rng, {0, 2, 4}, 8, 3)
        assert len(set(drawn)) == 3 and not set(drawn) & {0, 2, 4}
    assert sorted(sample_unseen(rng, {0, 1}, 4, 9)) == [2, 3]


def test_negative_choose_and_reject() -> None:
    rng = np.random.default_rng(0)
    dataset = make_dataset({f"u{u}": [f"i{i}" for i in rng.permutation(30)[:12]] for u in range(8)})
    ctx = TaskContext.from_dataset(dataset, 5, 2)
    examples = TASKS["negative"].build(ctx, np.random.default_rng(3))
    assert len(examples) >= 8
    kinds = set()
    for example in examples:
        context, _ = example.render(name_of(dataset))
        (target,) = example.target_items()
        train = ctx.train_sequences[example.user]
        rejecting = "not choose" in context or "skip" in context
        kinds.add(rejecting)
        start = next(i for i, p in enumerate(example.pieces) if p.text in CHOOSE) + 1
        candidates = [p.item for p in example.pieces[start:] if p.is_item and not p.target]
        assert target in candidates and len(set(candidates)) == len(candidates)
        if rejecting:
            assert target not in ctx.seen[example.user] and set(candidates) - {target} <= set(train.tolist())
        else:
            assert target in train and not (set(candidates) - {target}) & ctx.seen[example.user]
    assert kinds == {True, False}


@pytest.mark.parametrize("task", list(TASKS))
def test_no_task_sees_a_validation_or_test_target(task: str) -> None:
    """Every user's last two items are unique to them, so any appearance is a leak."""
    sequences = {f"u{u}": [f"shared{(u + s) % 5}" for s in range(6)] + [f"valid{u}", f"test{u}"] for u in range(6)}
    text = {i: {"title": f"Film {i} (1990)", "genres": "Drama"} for seq in sequences.values() for i in seq}
    dataset = make_dataset(sequences, item_text=text)
    held_out = {u: {int(dataset.sequence(u)[-1]), int(dataset.sequence(u)[-2])} for u in eval_users(dataset)}
    ctx = TaskContext.from_dataset(dataset, history=4, negatives=2)
    examples = TASKS[task].build(ctx, np.random.default_rng(0))
    assert examples
    for example in examples:
        shown = set(example.context_items()) | set(example.target_items())
        if example.user < 0:  # a catalogue task describes items, not interactions
            assert len(shown) <= 1
            continue
        assert not shown & held_out[example.user], f"{task} shows user {example.user}'s held-out target"


def test_id_only_data_skips_text_tasks_and_says_why() -> None:
    dataset = make_dataset({"u0": ["a", "b", "c", "d"], "u1": ["b", "c", "d"]})
    mixture = build_mixture(TaskContext.from_dataset(dataset, 3, 1), TasksConfig(), seed=0)
    assert set(mixture.counts) == {"sequential", "negative"}
    assert mixture.skipped["item_to_text"] == "the dataset has no titles"
    assert "genres" in mixture.skipped["preference"]


def test_weights_and_switches(movies: SequenceDataset) -> None:
    config = TasksConfig()
    config.sequential.weight = 2.0
    config.negative.enabled = False
    ctx = TaskContext.from_dataset(movies, 3, 1)
    natural = len(TASKS["sequential"].build(ctx, np.random.default_rng(0)))
    mixture = build_mixture(ctx, config, seed=0)
    assert mixture.counts["sequential"] == 2 * natural
    assert "negative" not in mixture.counts and mixture.skipped["negative"] == "disabled in the config"
    assert build_mixture(ctx, config, seed=0).examples == mixture.examples  # seeded
