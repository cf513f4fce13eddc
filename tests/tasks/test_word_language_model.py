"""Word- and BPE-level language models and AWD-LSTM's regularisers."""

from __future__ import annotations

import pytest
import torch
from conftest import quiet_trainer, shared_dataset

from rnnzoo import LanguageModel, LanguageModelDataModule
from rnnzoo.nn.regularization import LockedDropout, embedding_dropout

ROWS = ["the cat sat on the mat", "the dog 's <unk> ran", "a cat n't sat"]


@pytest.fixture
def word_corpus(tmp_path):
    folder = tmp_path / "words"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        (folder / f"{split}.txt").write_text("\n".join(ROWS * 4), encoding="utf-8")
    return folder


def test_word_streams_keep_the_text_tokens_and_end_every_row_with_eos(word_corpus):
    data = LanguageModelDataModule(str(word_corpus), tokenizer="word", eos_token="<eos>", batch_size=2)
    tokenizer = data.tokenizer
    assert [tokenizer.id_to_token(i) for i in range(4)] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    stream = data.encode("train")
    words = sum(len(row.split()) + 1 for row in ROWS) * 4
    assert stream.numel() == words
    assert int((stream == tokenizer.eos_id).sum()) == len(ROWS) * 4
    assert int((stream == tokenizer.unk_id).sum()) == 4  # the text's own <unk> is the unknown token
    assert tokenizer.decode(stream[6:12]) == "the dog 's ran"  # 's stays one token; specials dropped
    assert "'s" in tokenizer.tokenizer.get_vocab() and "n't" in tokenizer.tokenizer.get_vocab()


def test_bpe_streams_decode_back_to_the_rows(word_corpus):
    data = LanguageModelDataModule(
        str(word_corpus), tokenizer="bpe", eos_token="<eos>", max_vocab_size=300, batch_size=2
    )
    stream, eos = data.encode("validation"), data.tokenizer.eos_id
    ends = (stream == eos).nonzero().flatten().tolist()
    starts = [0] + [end + 1 for end in ends[:-1]]
    rows = [data.tokenizer.decode(stream[start:end]) for start, end in zip(starts, ends, strict=True)]
    assert rows == ROWS * 4  # byte-level BPE is exact: the text <unk> is read as its characters


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tokenizer": "sentencepiece"}, "tokenizer must be one of char, word, bpe"),
        ({"tokenizer": "char", "eos_token": "<eos>"}, "only '<eos>' is supported"),
        ({"tokenizer": "word", "eos_token": "</s>"}, "only '<eos>' is supported"),
    ],
)
def test_bad_tokenizer_options_are_refused(word_corpus, options, message):
    with pytest.raises(ValueError, match=message):
        LanguageModelDataModule(str(word_corpus), **options)


def test_word_tokenizer_with_too_high_min_freq_names_the_option(word_corpus):
    data = LanguageModelDataModule(str(word_corpus), tokenizer="word", min_freq=1000)
    with pytest.raises(ValueError, match="lower min_freq"):
        _ = data.tokenizer


def test_locked_dropout_drops_the_same_units_at_every_step():
    torch.manual_seed(0)
    dropout = LockedDropout(0.5)
    outputs = dropout(torch.ones(3, 7, 16))
    assert (outputs == outputs[:, :1]).all()
    assert 0 < int((outputs[:, 0] == 0).sum()) < 3 * 16
    assert torch.equal(dropout.eval()(outputs), outputs)


def test_embedding_dropout_drops_every_occurrence_of_a_word():
    torch.manual_seed(0)
    tokens = torch.tensor([[1, 2, 1, 3, 2, 1]] * 2)
    dropped = embedding_dropout(torch.ones(2, 6, 4), tokens, vocab_size=5, p=0.5)
    for token in (1, 2, 3):
        rows = dropped[tokens == token]
        assert (rows == rows[0]).all()
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}


def test_weight_drop_changes_training_outputs_only_and_trains_the_raw_weights():
    torch.manual_seed(0)
    plain = LanguageModel(20, hidden_size=16, num_layers=2, dropout=0.0)
    dropped = LanguageModel(20, hidden_size=16, num_layers=2, dropout=0.0, weight_drop=0.5)
    state = {
        key.replace(".parametrizations.", ".").replace(".original", ""): v for key, v in dropped.state_dict().items()
    }
    plain.load_state_dict(dropped_state := state)
    assert len(dropped_state) == len(plain.state_dict())
    tokens = torch.randint(0, 20, (3, 9))
    plain.eval(), dropped.eval()
    torch.testing.assert_close(dropped(tokens)[0], plain(tokens)[0])
    dropped.train()
    first, second = dropped(tokens)[0], dropped(tokens)[0]
    assert not torch.allclose(first, second)
    first.sum().backward()
    raw = dropped.backbone.layers[0][0].parametrizations.weight_hh_l0.original
    assert raw.grad is not None and raw.grad.abs().sum() > 0


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rates_outside_zero_to_one_are_refused(rate):
    with pytest.raises(ValueError, match=r"weight_drop must lie in \[0, 1\)"):
        LanguageModel(20, hidden_size=8, num_layers=1, weight_drop=rate)
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        LockedDropout(rate)


def test_activation_regularisers_add_their_penalties():
    torch.manual_seed(0)
    model = LanguageModel(20, hidden_size=16, num_layers=1, dropout=0.0)
    tokens = torch.randint(0, 20, (4, 11))
    batch = (tokens[:, :-1], tokens[:, 1:])
    _, outputs, _ = model.read(batch[0])
    base = model.training_loss(batch)
    model.hparams.activation_regularization, model.hparams.temporal_activation_regularization = 2.0, 1.0
    model.reset_carried_state("train")  # read the chunk from h_0 = 0 again
    penalised = model.training_loss(batch)
    expected = 2.0 * outputs.pow(2).mean() + (outputs[:, 1:] - outputs[:, :-1]).pow(2).mean()
    torch.testing.assert_close(penalised - base, expected)


@pytest.mark.slow
def test_a_word_level_awd_lstm_learns_penn_treebank(tmp_path):
    folder = shared_dataset("ptb")
    data = LanguageModelDataModule(
        str(folder), text_column="sentence", tokenizer="word", eos_token="<eos>", batch_size=16, tbptt_steps=35
    )
    assert len(data.tokenizer) == 10_002  # PTB's 10,000 words (<unk> and <eos> among them) plus <pad>, <bos>
    model = LanguageModel(
        len(data.tokenizer), hidden_size=64, num_layers=2, dropout=0.1, locked_dropout=True, weight_drop=0.2,
        embedding_dropout=0.05, tie_weights=True, activation_regularization=2.0,
        temporal_activation_regularization=1.0, optimizer=lambda params: torch.optim.Adam(params, lr=0.005),
    )  # fmt: skip
    trainer = quiet_trainer(tmp_path, max_steps=200, limit_val_batches=20, val_check_interval=200)
    trainer.fit(model, data)
    ppl = float(trainer.callback_metrics["val_ppl"])
    assert ppl < 600, ppl  # a uniform guess is 10,002; unigram frequencies alone reach about 700
