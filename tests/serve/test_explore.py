"""The page's search and detail answers: match order, histories in order, code-space neighbours, missing codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from alignrec.data.dataset import SequenceDataset
from alignrec.models.mostpop import MostPop
from alignrec.serve.explore import Explorer, load_code_space
from tests.conftest import make_dataset


def explorer_of(run: Path, dataset: SequenceDataset | None = None) -> Explorer:
    dataset = dataset or SequenceDataset.load(run / "data")
    titles = [dataset.title(i) for i in range(dataset.num_items)]
    return Explorer(dataset, titles, MostPop.fit(dataset).counts, *load_code_space(run, dataset))


@pytest.fixture(scope="module")
def coded(coded_run: Path) -> Explorer:
    return explorer_of(coded_run)


def test_users_match_exactly_then_by_prefix_then_inside_ignoring_case(coded) -> None:
    assert [u.user_id for u in coded.search_users("U1", 4)] == ["u1", "u10", "u11", "u12"]
    assert [u.user_id for u in coded.search_users("ewbi", 5)] == ["newbie"]
    assert coded.search_users("", 3)[0].user_id == coded.user_ids[0] and len(coded.search_users("", 3)) == 3
    assert coded.search_users("zzz", 5) == []
    lonely = coded.search_users("lonely", 1)[0]
    assert lonely.history_length == 1


def test_items_match_titles_most_interacted_first_and_an_exact_id_leads(coded) -> None:
    found = coded.search_items("film 1", 20)
    assert found[0].title == "Film 1"  # exact title
    rest = [i.interactions for i in found[1:]]
    assert rest == sorted(rest, reverse=True) and all(i.title.startswith("Film 1") for i in found)
    assert coded.search_items("i7", 3)[0].item_id == "i7"  # an id, though no title holds "i7"
    top = coded.search_items("", 5)
    assert [i.interactions for i in top] == sorted(coded.counts.tolist(), reverse=True)[:5]


def test_history_is_in_order_with_titles_and_codes(coded, coded_run) -> None:
    dataset = SequenceDataset.load(coded_run / "data")
    history = coded.history("u3")
    expected = dataset.sequence(dataset.user_index()["u3"])
    assert [i.item_id for i in history.items] == [str(dataset.item_ids[i]) for i in expected]
    first = history.items[0]
    assert first.title == f"Film {first.item_id[1:]}" and len(first.codes) == 2
    assert first.tokens == [f"<a_{first.codes[0]}>", f"<b_{first.codes[1]}>"]
    assert coded.history("stranger") is None


def test_item_neighbours_share_the_longest_prefix_then_are_closest(coded) -> None:
    item = coded.item("i3", 29)
    assert item.codes is not None and item.codes_note is None
    assert len(item.neighbours) == 29 and "i3" not in {n.item_id for n in item.neighbours}
    keys = [(-n.shared_prefix, n.distance) for n in item.neighbours]
    assert keys == sorted(keys)
    assert all(n.shared_prefix == int(np.cumprod(np.equal(n.codes, item.codes)).sum()) for n in item.neighbours)
    assert coded.item("i3", 0).neighbours == [] and coded.item("nope", 5) is None


def test_without_tokens_everything_works_and_says_why_codes_are_missing(run_dir) -> None:
    explorer = explorer_of(run_dir)
    assert explorer.info().codes is False and "does not exist" in explorer.info().codes_note
    item = explorer.item("i3", 5)
    assert item.codes is None and item.tokens is None and item.neighbours == []
    assert "codes unavailable" in item.codes_note
    assert explorer.history("u0").items[0].codes is None


def test_tokens_of_other_items_or_a_broken_folder_are_reported_not_raised(coded_run, tmp_path) -> None:
    other = make_dataset({"a": ["x", "y"]})
    space, note = load_code_space(coded_run, other)
    assert space is None and "made for other items" in note
    broken = tmp_path / "run"
    shutil.copytree(coded_run / "tokens", broken / "tokens")
    (broken / "tokens" / "codes.npz").unlink()
    space, note = load_code_space(broken, other)
    assert space is None and "missing codes.npz" in note
