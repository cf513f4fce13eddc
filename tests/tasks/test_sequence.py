"""Long-range tasks: the adding problem, pixel-by-pixel MNIST, and the frame-reading SequencePredictor."""

from __future__ import annotations

import pytest
import torch
from conftest import quiet_trainer, shared_dataset

from rnnzoo import AddingProblemDataModule, PixelSequenceDataModule, SequencePredictor, load_task


def test_adding_problem_marks_one_value_in_each_half_and_sums_them():
    data = AddingProblemDataModule(length=20, train_size=50, val_size=10, test_size=300, seed=3)
    frames, targets = data.encoded_split("test")[:]
    markers = frames[..., 1]
    assert frames.shape == (300, 20, 2) and torch.equal(markers.sum(1), torch.full((300,), 2.0))
    assert bool((markers[:, :10].sum(1) == 1).all()) and bool((markers[:, 10:].sum(1) == 1).all())
    torch.testing.assert_close(targets, (frames[..., 0] * markers).sum(1))
    # Always answering 1 scores about 1/6: the baseline to beat.
    assert ((targets - 1) ** 2).mean() == pytest.approx(1 / 6, abs=0.03)
    again = AddingProblemDataModule(length=20, train_size=50, val_size=10, test_size=300, seed=3)
    assert torch.equal(again.encoded_split("test")[:][0], frames)


def test_a_gated_cell_learns_the_short_adding_problem(tmp_path):
    torch.manual_seed(0)
    data = AddingProblemDataModule(length=10, train_size=4000, val_size=500, test_size=500, batch_size=50)
    model = SequencePredictor(
        data.frame_size, cell="gru", hidden_size=16, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2)
    )
    trainer = quiet_trainer(tmp_path, max_epochs=3)
    trainer.fit(model, data)
    assert trainer.test(model, data, verbose=False)[0]["test_loss"] < 0.05  # the baseline is 0.167


def test_pixel_mnist_is_split_8k_1k_1k_one_pixel_per_step():
    data = PixelSequenceDataModule(str(shared_dataset("mnist_t10k")))
    data.setup("fit")
    sizes = {name: len(split) for name, split in data.encoded.items()}
    assert sizes == {"train": 8000, "validation": 1000, "test": 1000}
    frames, label = data.encoded_split("train")[0]
    assert frames.shape == (784, 1) and 0.0 <= float(frames.min()) <= float(frames.max()) <= 1.0
    assert 0 <= int(label) <= 9
    with pytest.raises(ValueError, match="ask for 20000 rows"):
        PixelSequenceDataModule(str(shared_dataset("mnist_t10k")), sizes=(18000, 1000, 1000)).setup("fit")


def test_classification_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SequencePredictor(3, num_outputs=4, objective="classification", cell="indrnn", hidden_size=8)
    frames = torch.randn(5, 7, 3)
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    restored = load_task(str(tmp_path / "model.ckpt")).eval()
    torch.testing.assert_close(restored(frames), model.eval()(frames))


def test_bad_input_is_one_clear_error():
    model = SequencePredictor(2)
    with pytest.raises(ValueError, match=r"expected frames \[batch, steps, 2\], got \[4, 9, 3\]"):
        model(torch.randn(4, 9, 3))
    with pytest.raises(ValueError, match="classification needs num_outputs >= 2"):
        SequencePredictor(2, num_outputs=1, objective="classification")
    with pytest.raises(ValueError, match="objective must be 'regression' or 'classification'"):
        SequencePredictor(2, objective="ranking")
    with pytest.raises(ValueError, match="the adding problem needs length >= 2"):
        AddingProblemDataModule(length=1)


def test_a_label_outside_num_outputs_is_refused_before_training(tmp_path):
    from conftest import write_jsonl

    rows = [{"pixels": [i % 256, 0, 255, 7], "label": i % 3} for i in range(12)]
    rows[5]["label"] = 12  # one label past the model's 10 classes
    folder = write_jsonl(tmp_path / "digits", {"test": rows})
    data = PixelSequenceDataModule(str(folder), sizes=(6, 3, 3), batch_size=4)
    model = SequencePredictor(1, num_outputs=10, objective="classification", cell="gru", hidden_size=4)
    with pytest.raises(ValueError, match=r"has labels \[12\] outside \[0, 10\) \(num_outputs: 10\) in 1 row"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, data)
