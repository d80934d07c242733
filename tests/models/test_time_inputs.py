import numpy as np
import pytest
import torch

from alignrec.models.sasrec import PAD, SASRec, left_pad, left_pad_stamps
from alignrec.models.time_inputs import DATE_BUCKETS, PAD_BUCKET, UNKNOWN_BUCKET, TimeInputs, date_edges

FIRST = UNKNOWN_BUCKET + 1  # the first real bucket


def test_gap_buckets_by_hand() -> None:
    time = TimeInputs(hidden=4)
    padded = torch.tensor([[PAD, 5, 6, 7, 8, 9]])
    stamps = torch.tensor([[0.0, 1000.0, 1000.0, 1005.0, 1100.0, 1000.0 + 2 * 86400]], dtype=torch.float64)
    gap, _ = time.buckets(padded, stamps)
    # padding, first item (no previous), same second, 5 s, 95 s (1-10 min), 2 days
    assert gap.tolist() == [[PAD_BUCKET, UNKNOWN_BUCKET, FIRST, FIRST + 1, FIRST + 3, FIRST + 6]]


def test_date_buckets_follow_the_training_period() -> None:
    time = TimeInputs(hidden=4, dates=True)
    time.set_date_edges(date_edges(np.arange(1000, dtype=np.float64)))
    padded = torch.tensor([[PAD, 1, 2, 3]])
    _, date = time.buckets(padded, torch.tensor([[0.0, -50.0, 500.0, 10**6]], dtype=torch.float64))
    assert date.tolist() == [[PAD_BUCKET, FIRST, FIRST + DATE_BUCKETS // 2, FIRST + DATE_BUCKETS - 1]]
    assert len(date_edges(np.arange(1000.0))) == DATE_BUCKETS - 1


def test_unknown_times_get_their_own_bucket() -> None:
    gap, date = TimeInputs(hidden=4).buckets(torch.tensor([[PAD, 3, 4]]), None)
    assert gap.tolist() == date.tolist() == [[PAD_BUCKET, UNKNOWN_BUCKET, UNKNOWN_BUCKET]]


def timed_model() -> SASRec:
    torch.manual_seed(0)
    return SASRec(num_items=20, hidden=16, layers=2, heads=2, dropout=0.0, max_len=8, time_gaps=True, time_dates=True).eval()


def test_times_change_later_states_only_and_survive_trimming() -> None:
    net = timed_model()
    items = [np.array([3, 4, 5, 6])]
    burst = [np.array([100.0, 100.0, 100.0, 100.0])]
    later = [np.array([100.0, 100.0, 5000.0, 5000.0])]  # the third item comes 82 min later
    with torch.no_grad():
        a = net(left_pad(items, 8), left_pad_stamps(burst, 8))
        b = net(left_pad(items, 8), left_pad_stamps(later, 8))
        trimmed = net.score_last(left_pad(items, 8, trim=True), left_pad_stamps(burst, 4))
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6)  # causal: earlier positions see the same
    assert not torch.allclose(a[:, 6:], b[:, 6:], atol=1e-4)
    assert torch.allclose(net.logits(a[:, -1], net.item_vectors()), trimmed, atol=1e-5)


def test_a_model_without_time_inputs_ignores_stamps() -> None:
    torch.manual_seed(0)
    net = SASRec(num_items=20, hidden=16, layers=1, heads=1, dropout=0.0, max_len=8).eval()
    padded = left_pad([np.array([1, 2, 3])], 8)
    with torch.no_grad():
        plain = net.score_last(padded)
        stamped = net.score_last(padded, left_pad_stamps([np.array([1.0, 2.0, 9e5])], 8))
    assert net.time_inputs is None and torch.equal(plain, stamped)


@pytest.mark.parametrize("width", [3, 8])
def test_left_pad_stamps_aligns_with_left_pad(width: int) -> None:
    stamps = left_pad_stamps([np.array([1.0, 2.0, 3.0, 4.0]), np.array([7.0])], width)
    ids = left_pad([np.array([0, 1, 2, 3]), np.array([5])], width)
    assert stamps.dtype == torch.float64
    assert torch.equal(stamps != 0, ids != PAD)
    assert stamps[0, -1] == 4.0 and stamps[1, -1] == 7.0


def test_gaps_alone_need_no_date_table() -> None:
    time = TimeInputs(hidden=4)
    assert time.date_embedding is None
    added = time(torch.tensor([[PAD, 3, 4]]), torch.tensor([[0.0, 5.0, 5.0]], dtype=torch.float64))
    assert added.shape == (1, 3, 4) and torch.all(added[0, 0] == 0)  # padding adds nothing
    assert not torch.allclose(added[0, 1], added[0, 2])  # first item (unknown gap) vs same second
