"""The char-LM: data streams, truncated BPTT state carrying, checkpoints, generation, learning."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from conftest import TINY_TEXT, quiet_trainer, shared_dataset
from datasets import Dataset, DatasetDict
from lightning import Callback
from lightning.pytorch.loggers import CSVLogger

from rnnzoo import CharTokenizer, LanguageModel, LanguageModelDataModule, load_task
from rnnzoo.data import ContiguousChunks, get_split
from rnnzoo.gradients import global_grad_norm


def small_model(vocab_size: int, cell: str = "lstm", **kwargs) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(vocab_size, cell=cell, hidden_size=32, num_layers=2, dropout=0.0, **kwargs)


def test_contiguous_chunks_continue_each_row():
    tokens = torch.arange(103)
    chunks = ContiguousChunks(tokens, batch_size=4, steps=6)
    pieces = list(chunks)
    assert len(pieces) == len(chunks) == math.ceil((25 - 1) / 6)
    inputs = torch.cat([x for x, _ in pieces], dim=1)
    targets = torch.cat([y for _, y in pieces], dim=1)
    rows = tokens[:100].view(4, 25)
    torch.testing.assert_close(inputs, rows[:, :-1])
    torch.testing.assert_close(targets, rows[:, 1:])


def test_random_chunk_lengths_cover_the_stream_and_vary_by_pass():
    tokens = torch.arange(4 * 2001)
    chunks = ContiguousChunks(tokens, batch_size=4, steps=70, random_lengths=True, seed=3)
    first, second = list(chunks), list(chunks)
    assert len(first) == len(second) == len(chunks) == math.ceil(2000 / 70)
    for pieces in (first, second):
        inputs = torch.cat([x for x, _ in pieces], dim=1)
        torch.testing.assert_close(inputs, tokens.view(4, 2001)[:, :-1])
    lengths = [x.shape[1] for x, _ in first]
    assert lengths != [x.shape[1] for x, _ in second]  # a new cut every pass
    assert len(set(lengths)) > 5 and min(lengths) >= 5 and abs(sum(lengths) / len(lengths) - 70) < 3
    # The same seed and pass cut the same way (what an exact resume needs).
    again = ContiguousChunks(tokens, batch_size=4, steps=70, random_lengths=True, seed=3)
    assert [x.shape[1] for x, _ in again] == lengths


def test_random_chunk_lengths_resume_mid_pass():
    tokens = torch.arange(2 * 1501)
    chunks = ContiguousChunks(tokens, batch_size=2, steps=40, random_lengths=True, seed=0)
    list(chunks)  # pass 0
    second_pass = iter(chunks)
    seen = [next(second_pass) for _ in range(7)]
    state = chunks.state_dict()
    assert state == {"pass": 1, "position": 7}
    resumed = ContiguousChunks(tokens, batch_size=2, steps=40, random_lengths=True, seed=0)
    resumed.load_state_dict(state)
    rest = list(resumed)
    uninterrupted = ContiguousChunks(tokens, batch_size=2, steps=40, random_lengths=True, seed=0)
    list(uninterrupted)
    expected = list(uninterrupted)
    for got, want in zip(seen + rest, expected, strict=True):
        torch.testing.assert_close(got.inputs, want.inputs)


def test_processes_share_out_the_rows_of_one_layout():
    tokens = torch.arange(4 * 31)
    whole = ContiguousChunks(tokens, batch_size=4, steps=7)
    ranks = [ContiguousChunks(tokens, batch_size=4, steps=7, rank=rank, world_size=2) for rank in (0, 1)]
    for chunk, first, second in zip(whole, *ranks, strict=True):
        torch.testing.assert_close(first.inputs, chunk.inputs[0::2])
        torch.testing.assert_close(second.targets, chunk.targets[1::2])
    with pytest.raises(ValueError, match="2 rows cannot be shared out among 3 processes"):
        ContiguousChunks(tokens, batch_size=2, steps=7, world_size=3)


def test_random_chunk_lengths_need_room_to_vary(tiny_corpus):
    with pytest.raises(ValueError, match="at least 10"):
        ContiguousChunks(torch.arange(100), batch_size=2, steps=6, random_lengths=True)
    with pytest.raises(ValueError, match="random_tbptt_length needs tbptt_steps of at least 10"):
        LanguageModelDataModule(str(tiny_corpus), tbptt_steps=5, random_tbptt_length=True)


def test_local_lines_and_single_row_give_the_same_stream(tmp_path, tiny_corpus):
    single = tmp_path / "single_row"
    single.mkdir()
    for split in ("train", "validation", "test"):
        text = (tiny_corpus / f"{split}.txt").read_text(encoding="utf-8")
        (single / f"{split}.jsonl").write_text(json.dumps({"text": text}) + "\n", encoding="utf-8")
    by_line = LanguageModelDataModule(str(tiny_corpus))
    by_split = LanguageModelDataModule(str(single))
    assert by_line.text("train") == by_split.text("train") == TINY_TEXT
    assert by_line.tokenizer == by_split.tokenizer


def test_vocab_size_is_known_before_setup(tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus))
    assert data.vocab_size == len(set(TINY_TEXT))
    assert data.streams == {}


def test_bad_data_gets_clear_errors(tmp_path, tiny_corpus):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LanguageModelDataModule(str(tmp_path / "missing")).vocab_size
    with pytest.raises(KeyError, match=r"no split 'dev'.*\['test', 'train', 'validation'\]"):
        LanguageModelDataModule(str(tiny_corpus), train_split="dev").vocab_size
    with pytest.raises(KeyError, match="no column 'content'.*text_column"):
        LanguageModelDataModule(str(tiny_corpus), text_column="content").vocab_size
    with pytest.raises(ValueError, match="tbptt_steps must be a positive"):
        LanguageModelDataModule(str(tiny_corpus), tbptt_steps=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no text"):
        LanguageModelDataModule(str(empty)).vocab_size
    no_rows = DatasetDict({"train": Dataset.from_dict({"text": []})})
    with pytest.raises(ValueError, match="split 'train' of dataset 'x' is empty"):
        get_split(no_rows, "train", "x", "text")
    unseen = tmp_path / "unseen"
    unseen.mkdir()
    (unseen / "train.txt").write_text("abc abc\n", encoding="utf-8")
    (unseen / "validation.txt").write_text("abcz\n", encoding="utf-8")
    data = LanguageModelDataModule(str(unseen), batch_size=1, eval_batch_size=1)
    with pytest.raises(ValueError, match="split 'validation'.*'z'.*unk_token"):
        data.setup("fit")
    data = LanguageModelDataModule(str(unseen), batch_size=1, eval_batch_size=1, unk_token="?")
    data.setup("fit")
    assert data.tokenizer.decode(data.streams["validation"]) == "abc?"


def test_tbptt_carries_the_detached_state_from_chunk_to_chunk(tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=3, tbptt_steps=5)
    data.setup("fit")
    model = small_model(data.vocab_size)
    seen_states, final_states = [], []
    original_forward = model.backbone.forward

    def spy(inputs, lengths=None, state=None):
        seen_states.append(state)
        outputs, final = original_forward(inputs, lengths, state)
        final_states.append(final)
        return outputs, final

    model.backbone.forward = spy
    for index, batch in enumerate(data.train_dataloader()):
        loss = model.training_step(batch, index)
        loss.backward()  # would fail if the graph reached into the previous chunk's freed buffers
        if index == 3:
            break
    assert seen_states[0] is None  # h_0 = 0 at the start of the stream
    for k in range(1, 4):
        for start, end in zip(seen_states[k], final_states[k - 1], strict=True):
            torch.testing.assert_close(start, end)
            assert not start.requires_grad
    model.training_step(next(iter(data.train_dataloader())), 0)  # a new epoch
    assert seen_states[-1] is None


def test_chunked_validation_equals_one_long_pass(tiny_corpus):
    """Carrying the state makes chunk boundaries invisible: same loss as the unchunked stream."""
    data = LanguageModelDataModule(str(tiny_corpus), eval_batch_size=2, tbptt_steps=7)
    data.setup("validate")
    model = small_model(data.vocab_size).eval()
    model.on_validation_epoch_start()
    with torch.no_grad():
        for index, batch in enumerate(data.val_dataloader()):
            model.validation_step(batch, index)
        chunked = model.metrics["val"]["loss"].compute()
        rows = ContiguousChunks(data.streams["validation"], 2, 10**9).rows
        logits, _ = model(rows[:, :-1])
        whole = torch.nn.functional.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten())
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=4, tbptt_steps=16)
    model = small_model(data.vocab_size, cell="gru")
    trainer = quiet_trainer(tmp_path, max_steps=3, limit_val_batches=1)
    trainer.fit(model, datamodule=data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    restored = LanguageModel.load_from_checkpoint(path)  # no CLI, no dataset
    assert restored.tokenizer == data.tokenizer
    tokens = data.tokenizer.encode("Speak, speak.").unsqueeze(0)
    model.eval()
    restored.eval()
    torch.testing.assert_close(restored(tokens)[0], model(tokens)[0], rtol=0, atol=0)
    assert isinstance(load_task(str(path)), LanguageModel)
    assert restored.generate("All:", 20, seed=3) == model.generate("All:", 20, seed=3)


def test_checkpoint_from_a_future_format_is_refused(tmp_path, tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus))
    model = small_model(data.vocab_size)
    model.tokenizer = data.tokenizer
    trainer = quiet_trainer(tmp_path, max_steps=1, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["rnnzoo"]["format"] = 99
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="format 99.*upgrade rnnzoo"):
        LanguageModel.load_from_checkpoint(path)


def test_generate_reads_the_prompt_from_zero_state_and_is_reproducible():
    tokenizer = CharTokenizer.from_text("abcdefgh \n")
    model = small_model(len(tokenizer))
    model.tokenizer = tokenizer
    text = model.generate("abc", max_new_tokens=12, seed=7)
    assert text.startswith("abc") and len(text) == 15
    assert model.generate("abc", max_new_tokens=12, seed=7) == text
    # Greedy decoding equals the argmax of one forward pass, step after step.
    greedy = model.generate("abc", max_new_tokens=5, temperature=0)
    ids = tokenizer.encode("abc").unsqueeze(0)
    for _ in range(5):
        logits, _ = model(ids)  # whole sequence from h_0 = 0
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert greedy == tokenizer.decode(ids[0])


def test_generate_bad_prompts_get_clear_errors():
    tokenizer = CharTokenizer.from_text("abc")
    model = small_model(len(tokenizer))
    with pytest.raises(RuntimeError, match="no tokenizer"):
        model.generate("a")
    model.tokenizer = tokenizer
    with pytest.raises(ValueError, match="prompt holds 1 character.*'é'"):
        model.generate("abé")
    with pytest.raises(ValueError, match=r"prompt\(s\) \[0\] are empty"):
        model.generate("")
    with pytest.raises(ValueError, match="temperature"):
        model.generate("a", temperature=-1)


def test_tokenizer_mismatch_is_caught_at_setup(tmp_path, tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus))
    model = small_model(data.vocab_size + 1)
    with pytest.raises(ValueError, match="built for vocab_size=.* but the tokenizer has .* tokens"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, datamodule=data)


def test_weight_tying_shares_the_matrix():
    model = LanguageModel(10, hidden_size=8, num_layers=1, tie_weights=True)
    assert model.head.weight is model.embedding.weight
    with pytest.raises(ValueError, match="tie_weights"):
        LanguageModel(10, hidden_size=8, embedding_size=4, tie_weights=True)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_loss_falls_on_real_text(tmp_path, cell):
    folder = shared_dataset("tiny_shakespeare")
    piece = tmp_path / "shakespeare_slice"
    piece.mkdir()
    (piece / "train.txt").write_text((folder / "train.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    (piece / "validation.txt").write_text(
        (folder / "validation.txt").read_text(encoding="utf-8")[:8_000], encoding="utf-8"
    )
    data = LanguageModelDataModule(str(piece), batch_size=16, eval_batch_size=4, tbptt_steps=64)
    torch.manual_seed(0)
    model = LanguageModel(data.vocab_size, cell=cell, hidden_size=128, num_layers=1, dropout=0.0)
    trainer = quiet_trainer(tmp_path, max_steps=1)
    before = trainer.validate(model, datamodule=data, verbose=False)[0]["val_loss"]
    trainer = quiet_trainer(tmp_path, max_steps=150, val_check_interval=150, check_val_every_n_epoch=None)
    model.optimizer_factory = lambda params: torch.optim.AdamW(params, lr=5e-3)
    trainer.fit(model, datamodule=data)
    after = trainer.validate(model, datamodule=data, verbose=False)[0]["val_loss"]
    assert before > 3.5  # about ln(65): knows nothing
    assert after < 2.6, f"validation loss only fell from {before:.3f} to {after:.3f}"


def test_predict_scores_every_token_like_test(tmp_path, tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus), eval_batch_size=2, tbptt_steps=16)
    model = small_model(data.vocab_size)
    trainer = quiet_trainer(tmp_path)
    scores = trainer.predict(model, datamodule=data)
    test_loss = trainer.test(model, datamodule=data, verbose=False)[0]["test_loss"]
    # predict_step scores each chunk: one {"nll": [...]} per stream row, chunk after chunk.
    per_token = torch.cat([torch.tensor([row["nll"] for row in chunk]) for chunk in scores], dim=1)
    assert per_token.shape[0] == 2 and per_token.shape[1] == data.streams["test"].numel() // 2 - 1
    assert per_token.mean().item() == pytest.approx(test_loss, rel=1e-5)


def test_data_tokenizer_must_match_the_models(tmp_path, tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus))
    model = small_model(data.vocab_size)
    model.tokenizer = CharTokenizer(reversed(data.tokenizer.vocabulary))
    with pytest.raises(ValueError, match="data module's tokenizer differs from the model's"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, datamodule=data)


def test_grad_norm_is_logged_every_step_before_clipping(tmp_path, tiny_corpus):
    class NormBeforeClipping(Callback):  # callback hooks run just before the module's, on the same gradients
        def __init__(self):
            self.norms = []

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            self.norms.append(float(global_grad_norm(pl_module)))

    data = LanguageModelDataModule(str(tiny_corpus), batch_size=4, tbptt_steps=16)
    seen = NormBeforeClipping()
    trainer = quiet_trainer(
        tmp_path,
        max_steps=4,
        limit_val_batches=0,
        logger=CSVLogger(tmp_path),
        log_every_n_steps=1,
        gradient_clip_val=1e-3,
        callbacks=[seen],
    )
    trainer.fit(small_model(data.vocab_size), datamodule=data)
    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as file:
        logged = [float(row["grad_norm"]) for row in csv.DictReader(file) if row["grad_norm"]]
    assert len(logged) == 4 and min(logged) > 1e-3  # every step, the norm before clipping to 1e-3
    assert logged == pytest.approx(seen.norms, rel=1e-6)
