"""The truncated-BPTT carry shared by the language model and the tagger: what state each chunk starts from."""

from __future__ import annotations

import torch
from lightning import LightningModule

from rnnzoo.tasks.tbptt import TruncatedBPTT, state_rows


class Carrier(TruncatedBPTT, LightningModule):
    pass


def lstm_state(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(2, rows, 3, requires_grad=True) * 1, torch.randn(2, rows, 3, requires_grad=True) * 1


def test_a_stage_starts_from_zero_and_carries_the_detached_state():
    task = Carrier()
    assert task.carried_state("train", 4) is None
    state = lstm_state(4)
    task.carry("train", state)
    carried = task.carried_state("train", 4)
    assert state_rows(carried) == 4 and all(not tensor.requires_grad for tensor in carried)
    assert all(torch.equal(a, b.detach()) for a, b in zip(carried, state, strict=True))
    assert task.carried_state("val", 4) is None  # every stage has its own
    assert task.carried_state("train", 3) is None  # parallel streams: another batch size is another stream
    task.on_train_epoch_start()
    assert task.carried_state("train", 4) is None


def test_chunks_with_continues_cut_the_state_to_the_lanes_still_going_and_reset_new_rows():
    task = Carrier()
    state = torch.randn(1, 4, 2)
    task.carry("train", state)
    carried = task.carried_state("train", 3, torch.tensor([True, False, True]))
    torch.testing.assert_close(carried[:, [0, 2]], state[:, [0, 2]], rtol=0, atol=0)
    assert bool((carried[:, 1] == 0).all()) and carried.shape == (1, 3, 2)
    assert task.carried_state("train", 2, torch.tensor([False, False])) is None  # every row starts: h_0 = 0
    assert task.carried_state("train", 5, torch.ones(5, dtype=torch.bool)) is None  # more rows than carried


def test_every_epoch_start_hook_resets_its_stage():
    task = Carrier()
    for stage in ("train", "val", "test", "predict"):
        task.carry(stage, torch.ones(1, 2, 2))
    task.on_validation_epoch_start()
    task.on_test_epoch_start()
    task.on_predict_epoch_start()
    assert [task.carried_state(stage, 2) is None for stage in ("train", "val", "test", "predict")] == [
        False,
        True,
        True,
        True,
    ]
