import numpy as np
import pytest

from alignrec.data.dataset import SequenceDataset
from alignrec.errors import DataError
from tests.conftest import make_dataset


def test_save_load_round_trip(tiny, tmp_path) -> None:
    tiny.save(tmp_path)
    back = SequenceDataset.load(tmp_path)
    assert back.user_ids.tolist() == tiny.user_ids.tolist()
    assert back.item_ids.tolist() == tiny.item_ids.tolist()
    assert np.array_equal(back.items, tiny.items) and np.array_equal(back.offsets, tiny.offsets)
    assert back.title(0) == "Title A" and back.has_text
    assert back.manifest["counts"]["interactions"] == 9


def test_id_only_title_falls_back_to_the_original_id(tmp_path) -> None:
    ds = make_dataset({"u": ["x", "y", "z"]})
    ds.save(tmp_path)
    back = SequenceDataset.load(tmp_path)
    assert not back.has_text and back.title(1) == "y"


def test_loading_a_folder_that_is_not_prepared(tmp_path) -> None:
    with pytest.raises(DataError, match="not a prepared dataset.*alignrec data prepare"):
        SequenceDataset.load(tmp_path)


def test_sequences_split_by_user(tiny) -> None:
    seqs = tiny.sequences()
    assert [len(s) for s in seqs] == [4, 3, 2]
    assert all(np.array_equal(s, tiny.sequence(u)) for u, s in enumerate(seqs))
