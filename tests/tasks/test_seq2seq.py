"""Many-to-many translation: attention masking, padding invariance, beam search, BLEU, checkpoints, errors, learning."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
import sacrebleu
import torch
from conftest import RECIPES, quiet_trainer, shared_dataset, write_jsonl
from torchmetrics.text import SacreBLEUScore

from rnnzoo import LanguageModel, PairTokenizer, Seq2Seq, TextTokenizer, TranslationDataModule, load_task
from rnnzoo.batches import TranslationBatch, pad_sequences
from rnnzoo.cli import main
from rnnzoo.decoding import GenerationConfig, backbone_reorder, beam_search, index_select_state, length_penalty, sample
from rnnzoo.nn.attention import Attention
from rnnzoo.nn.masking import lengths_to_mask, masked_softmax

GERMAN = ["ein", "hund", "mann", "frau", "läuft", "sitzt", "im", "park", "schnee", "rot", "groß", "kind"]
ENGLISH = ["a", "dog", "man", "woman", "runs", "sits", "at", "park", "snow", "red", "big", "child"]


def toy_pairs(count: int, seed: int) -> list[dict]:
    """Word-by-word "translations" of random German word strings (the English order is reversed)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words = rng.choices(range(len(GERMAN)), k=rng.randint(1, 6))
        rows.append({"de": " ".join(GERMAN[w] for w in words), "en": " ".join(ENGLISH[w] for w in reversed(words))})
    return rows


@pytest.fixture
def toy_corpus(tmp_path) -> Path:
    return write_jsonl(
        tmp_path / "toy_corpus", {"train": toy_pairs(300, 0), "validation": toy_pairs(40, 1), "test": toy_pairs(40, 2)}
    )


def tiny_model(tokenizer: PairTokenizer | None = None, seed: int = 0, **options) -> Seq2Seq:
    torch.manual_seed(seed)
    sizes = tokenizer.vocab_sizes if tokenizer is not None else {"source": 20, "target": 17}
    defaults = dict(embedding_size=8, hidden_size=8, decoder_hidden_size=12, dropout=0.0, max_decode_length=12)
    model = Seq2Seq(sizes, **{**defaults, **options})
    model.tokenizer = tokenizer or toy_tokenizer()
    return model.eval()


def toy_tokenizer() -> PairTokenizer:
    """Word tokenizers with exactly 20 source and 17 target entries."""
    source = TextTokenizer.train_word_level([" ".join(f"s{i}" for i in range(16))])
    target = TextTokenizer.train_word_level([" ".join(f"t{i}" for i in range(13))])
    return PairTokenizer(source, target)


def random_batch(
    lengths: list[int], vocab: int, seed: int, padding: int = 5
) -> tuple[list, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sequences = [torch.randint(4, vocab, (length,), generator=generator) for length in lengths]
    tokens, lengths_tensor = pad_sequences(sequences, padding_value=padding)
    return sequences, tokens, lengths_tensor


ATTENTIONS = [
    dict(attention="none"),
    dict(attention="additive"),
    dict(attention="multiplicative", score="general"),
    dict(attention="multiplicative", score="dot", decoder_hidden_size=None),
    dict(attention="additive", input_feeding=True),
]
ATTENTION_IDS = ["none", "additive", "general", "dot", "additive-input_feeding"]


# Attention: padded source positions get zero weight, the rest sum to one.


@pytest.mark.parametrize("score", ["additive", "general", "dot"])
def test_attention_weights_are_zero_on_padding_and_sum_to_one(score):
    torch.manual_seed(0)
    attention = Attention(score, 6, 6)
    lengths = torch.tensor([4, 1, 3])
    memory = torch.randn(3, 4, 6)
    memory_padded = memory.masked_fill(~lengths_to_mask(lengths, 4).unsqueeze(-1), 1e4)  # huge padding values
    contexts, weights = attention(
        torch.randn(3, 5, 6), memory_padded, attention.keys(memory_padded), lengths_to_mask(lengths)
    )
    assert weights.shape == (3, 5, 4)
    assert torch.all(weights[~lengths_to_mask(lengths).unsqueeze(1).expand_as(weights)] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    assert contexts.abs().max() < 100  # padding never leaks into the context


def test_masked_softmax_matches_softmax_over_the_real_positions():
    scores = torch.randn(2, 5)
    mask = lengths_to_mask(torch.tensor([5, 2]))
    weights = masked_softmax(scores, mask)
    torch.testing.assert_close(weights[1, :2], scores[1, :2].softmax(-1))
    assert torch.all(weights[1, 2:] == 0)
    torch.testing.assert_close(weights[0], scores[0].softmax(-1))


def test_model_attention_weights_are_zero_on_padded_source_positions():
    model = tiny_model(attention="additive")
    _, source, source_lengths = random_batch([5, 2, 3], 20, 0)
    state = model.encode(source, source_lengths)
    _, _, weights = model.decode(torch.randint(4, 17, (3, 4)), state)
    padded = ~lengths_to_mask(source_lengths, 5)
    assert torch.all(weights.masked_select(padded.unsqueeze(1)) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))


# The model: a padded batch gives each pair what it gets alone.


@pytest.mark.parametrize("options", ATTENTIONS, ids=ATTENTION_IDS)
@pytest.mark.parametrize("cells", [("gru", "gru"), ("lstm", "lstm"), ("gru", "reference_lstm"), ("lstm", "rnn")])
def test_padded_batch_equals_one_pair_at_a_time(cells, options):
    model = tiny_model(encoder_cell=cells[0], decoder_cell=cells[1], num_layers=2, decoder_num_layers=1, **options)
    sources, source, source_lengths = random_batch([5, 1, 3, 4], 20, 0)
    targets, target, target_lengths = random_batch([2, 4, 1, 3], 17, 1, padding=9)
    together = model(source, source_lengths, target, target_lengths)
    for row, (alone_source, alone_target) in enumerate(zip(sources, targets, strict=True)):
        alone = model(alone_source.unsqueeze(0), torch.tensor([len(alone_source)]), alone_target.unsqueeze(0))
        torch.testing.assert_close(together[row, : len(alone_target)], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options", ATTENTIONS[:4], ids=ATTENTION_IDS[:4])
def test_whole_target_in_one_call_equals_step_by_step(options):
    model = tiny_model(bidirectional=False, hidden_size=12, **options)
    _, source, source_lengths = random_batch([5, 2, 3], 20, 0)
    target = torch.randint(4, 17, (3, 6))
    whole = model(source, source_lengths, target)
    state, steps = model.encode(source, source_lengths), []
    for position in range(6):
        logits, state = model.step(target[:, position], state)
        steps.append(logits)
    torch.testing.assert_close(whole, torch.stack(steps, 1), atol=1e-5, rtol=1e-5)


def test_teacher_forcing_below_one_feeds_the_models_own_guesses():
    model = tiny_model()
    _, source, source_lengths = random_batch([5, 2], 20, 0)
    target = torch.randint(4, 17, (2, 6))
    forced = model(source, source_lengths, target, teacher_forcing=1.0)
    free = model(source, source_lengths, target, teacher_forcing=0.0)
    torch.testing.assert_close(forced[:, 0], free[:, 0])  # the first step reads <bos> either way
    assert not torch.allclose(forced[:, 1:], free[:, 1:])
    # Fully free-running is greedy decoding read through the same steps.
    guesses = free.argmax(-1)[:, :-1]
    torch.testing.assert_close(free, model(source, source_lengths, torch.cat([target[:, :1], guesses], 1)))


def test_bridge_maps_any_encoder_onto_any_decoder():
    model = tiny_model(encoder_cell="lstm", decoder_cell="gru", num_layers=3, decoder_num_layers=2, bidirectional=True)
    _, source, source_lengths = random_batch([4, 2], 20, 0)
    state = model.encode(source, source_lengths)
    assert state["rnn"].shape == (2, 2, 12)
    zero = tiny_model(bridge="zero", decoder_cell="lstm")
    h, c = zero.encode(source, source_lengths)["rnn"]
    assert torch.all(h == 0) and torch.all(c == 0)


# Decoding: greedy, beam search, sampling.


def decode_ids(model, source, source_lengths, beam_size=1, n_best=1):
    """The model's hypotheses for a batch of source ids (no targets)."""
    empty = torch.zeros(len(source), 0, dtype=torch.long)
    batch = TranslationBatch(source, source_lengths, empty, torch.zeros(len(source)), [""] * len(source))
    return model.generate_hypotheses(batch, GenerationConfig(beam_size=beam_size, n_best=n_best))


def test_beam_size_one_is_greedy():
    model = tiny_model(attention="additive", seed=3)
    _, source, source_lengths = random_batch([5, 2, 3, 6, 1], 20, 0)
    greedy = decode_ids(model, source, source_lengths, beam_size=1)
    state = model.encode(source, source_lengths)
    logits, state = model.step(torch.full((5,), 2), state)
    beams = beam_search(model.step, logits, state, 1, 12, 3, alpha=0.6, reorder=model.reorder_state)
    for greedy_row, beam_row in zip(greedy, beams, strict=True):
        assert beam_row[0].tokens.tolist() == greedy_row[0].tokens.tolist()


@pytest.mark.parametrize("beam_size", [2, 5])
@pytest.mark.parametrize("options", ATTENTIONS[1:], ids=ATTENTION_IDS[1:])
def test_batched_beam_search_equals_one_sentence_at_a_time(beam_size, options):
    model = tiny_model(encoder_cell="lstm", decoder_cell="lstm", seed=1, **options)
    sources, source, source_lengths = random_batch([5, 2, 3, 6], 20, 0)
    together = decode_ids(model, source, source_lengths, beam_size=beam_size, n_best=2)
    for sentence, batch_row in zip(sources, together, strict=True):
        alone = decode_ids(model, sentence.unsqueeze(0), torch.tensor([len(sentence)]), beam_size, n_best=2)[0]
        assert [h.tokens.tolist() for h in alone] == [h.tokens.tolist() for h in batch_row]
        assert [h.score for h in alone] == pytest.approx([h.score for h in batch_row], abs=1e-4)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_each_sentence_stops_at_its_own_length_limit_whatever_the_batch(beam_size):
    model = tiny_model(seed=4, max_decode_length=40, max_length_ratio=0.5)
    model.head.bias.data[3] = -1e4  # <eos> never wins: every sentence runs to its limit
    sources, source, source_lengths = random_batch([1, 6, 3, 12], 20, 0)
    together = decode_ids(model, source, source_lengths, beam_size=beam_size)
    limits = [math.ceil(0.5 * len(sentence)) + 10 for sentence in sources]
    assert [len(row[0].tokens) for row in together] == limits
    for sentence, batch_row in zip(sources, together, strict=True):
        alone = decode_ids(model, sentence.unsqueeze(0), torch.tensor([len(sentence)]), beam_size)[0]
        assert alone[0].tokens.tolist() == batch_row[0].tokens.tolist()


def toy_step(tokens, state):
    """A fixed bigram model over 4 tokens (0 start, 1 a, 2 b, 3 end): greedy takes 'a', the best path is 'b b'."""
    table = torch.tensor(
        [
            [0.0, 0.4, 0.35, 0.25],  # after start: a is likelier than b ...
            [0.0, 0.3, 0.3, 0.4],  # ... but after a nothing is likely,
            [0.0, 0.0, 0.1, 0.9],  # while b ends almost surely.
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    return table[tokens].clamp_min(1e-9).log(), state + 1


def test_beam_search_finds_the_likelier_sequence_that_greedy_misses():
    logits, state = toy_step(torch.zeros(1, dtype=torch.long), torch.zeros(1))
    greedy = sample(toy_step, logits, state, 10, temperature=0, eos_id=3)
    assert greedy[0].tolist() == [1, 3]  # a <end>: 0.4 * 0.4 = 0.16
    best = beam_search(toy_step, logits, state, 2, 10, eos_id=3, n_best=2)[0]
    assert best[0].tokens.tolist() == [2] and best[0].log_prob == pytest.approx(math.log(0.35 * 0.9))
    assert best[1].tokens.tolist() == [1]
    assert best[0].score >= best[1].score


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_language_model_beam_searches_through_the_same_code(cell):
    torch.manual_seed(0)
    model = LanguageModel(11, cell, hidden_size=8, num_layers=2).eval()
    logits, state = model.step(torch.tensor([1, 2, 5]))
    greedy = sample(model.step, logits, state, 15, temperature=0, eos_id=0)
    beams = beam_search(model.step, logits, state, 1, 15, eos_id=0, reorder=backbone_reorder)
    for row, hypotheses in enumerate(beams):
        expected = greedy[row].tolist()
        expected = expected[: expected.index(0)] if 0 in expected else expected
        assert hypotheses[0].tokens.tolist() == expected
    for hypotheses in beam_search(model.step, logits, state, 4, 15, eos_id=0, n_best=4, reorder=backbone_reorder):
        assert len({tuple(h.tokens.tolist()) for h in hypotheses}) == 4  # distinct
        assert [h.score for h in hypotheses] == sorted((h.score for h in hypotheses), reverse=True)


def test_length_penalty_is_gnmts():
    assert length_penalty(1, 0.0) == 1
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert length_penalty(10, 0.6) == pytest.approx((15 / 6) ** 0.6)


def test_sampling_stops_at_the_end_token_and_is_seeded():
    model = tiny_model(seed=2)
    texts = ["s1 s2 s3", "s4"]
    first = model.translate(texts, beam_size=1, temperature=1.0, seed=7)
    assert first == model.translate(texts, beam_size=1, temperature=1.0, seed=7)
    assert first != model.translate(texts, beam_size=1, temperature=1.0, seed=8)
    logits, state = toy_step(torch.zeros(4, dtype=torch.long), torch.zeros(4))
    tokens = sample(toy_step, logits, state, 50, eos_id=3, generator=torch.Generator().manual_seed(0))
    assert tokens.shape[1] < 50 and torch.all(tokens[:, -1] == 3)
    ends = (tokens == 3).int().argmax(1)
    for row, end in enumerate(ends.tolist()):
        assert torch.all(tokens[row, end:] == 3)  # a finished row only repeats the end token


def test_index_select_state_walks_tuples_lists_and_dicts():
    state = {"pair": (torch.arange(6).view(3, 2), torch.arange(3)), "memory": [torch.arange(3)], "n": 4}
    picked = index_select_state(state, torch.tensor([2, 0]))
    assert picked["memory"][0].tolist() == [2, 0] and picked["n"] == 4
    assert picked["pair"][0].tolist() == [[4, 5], [0, 1]] and isinstance(picked["pair"], tuple)
    rnn = (torch.arange(6).view(2, 3, 1), torch.arange(6).view(2, 3, 1))  # [layers, B, H]
    rows = index_select_state(rnn, torch.tensor([2, 2]), dim=1)
    assert rows[1].view(-1).tolist() == [2, 2, 5, 5]


# Data: columns, dict columns, tokenizers.


def test_pairs_come_from_two_columns_or_one_translation_column(toy_corpus, tmp_path):
    two = TranslationDataModule(str(toy_corpus), batch_size=8)
    dict_rows = {
        split: [{"translation": {"de": r["de"], "en": r["en"]}} for r in toy_pairs(n, s)]
        for split, n, s in (("train", 300, 0), ("validation", 40, 1), ("test", 40, 2))
    }
    one = TranslationDataModule(
        str(write_jsonl(tmp_path / "wmt_like", dict_rows)), translation_column="translation", batch_size=8
    )
    assert two.pairs("validation") == one.pairs("validation")
    assert two.vocab_size == one.vocab_size == {"source": 4 + len(GERMAN), "target": 4 + len(ENGLISH)}
    one.setup("fit")
    batch = next(iter(one.train_dataloader()))
    assert torch.all(batch.target[:, 0] == 2)  # <bos>
    ends = batch.target.gather(1, (batch.target_lengths - 1).unsqueeze(1))
    assert torch.all(ends == 3)  # <eos> at each target's last real step
    assert len(batch.references) == batch.source.shape[0]


def test_bpe_tokenizers_and_length_limits(toy_corpus, caplog):
    data = TranslationDataModule(str(toy_corpus), tokenizer="bpe", bpe_vocab_size=300, max_source_length=3)
    data.setup("fit")
    assert all(length <= 3 for length in data.encoded_split("train").lengths)
    assert "over-long pair(s)" in caplog.text
    assert max(data.encoded_split("validation").lengths) > 3  # evaluation keeps every pair
    assert not data.tokenizer.target.word_level


def test_data_errors_name_the_fix(toy_corpus):
    with pytest.raises(KeyError, match="has no column 'fr'.*Set source_column"):
        TranslationDataModule(str(toy_corpus), source_column="fr").vocab_size
    with pytest.raises(KeyError, match="has no column 'translation'.*Set translation_column"):
        TranslationDataModule(str(toy_corpus), translation_column="translation").vocab_size
    with pytest.raises(ValueError, match="tokenizer must be 'word' or 'bpe'"):
        TranslationDataModule(str(toy_corpus), tokenizer="char")
    with pytest.raises(ValueError, match="both 'de'"):
        TranslationDataModule(str(toy_corpus), source_column="de", target_column="de")
    with pytest.raises(ValueError, match="max_source_length must be"):
        TranslationDataModule(str(toy_corpus), max_source_length=0)


def test_translation_key_missing_from_the_dict_column_is_a_clear_error(tmp_path):
    rows = [{"translation": {"de": "ein hund", "fr": "un chien"}}] * 3
    folder = write_jsonl(tmp_path / "defr", {"train": rows, "validation": rows, "test": rows})
    with pytest.raises(KeyError, match="has no language 'en'; it has \\['de', 'fr'\\]. Set target_column"):
        TranslationDataModule(str(folder), translation_column="translation").vocab_size


def test_model_errors_name_the_fix():
    with pytest.raises(ValueError, match="vocab_size must be a dict"):
        Seq2Seq(100)
    with pytest.raises(ValueError, match="input_feeding needs attention"):
        Seq2Seq({"source": 20, "target": 20}, attention="none", input_feeding=True)
    with pytest.raises(ValueError, match="attention must be"):
        Seq2Seq({"source": 20, "target": 20}, attention="luong")
    with pytest.raises(ValueError, match="dot attention needs query_size == memory_size"):
        Seq2Seq({"source": 20, "target": 20}, attention="multiplicative", score="dot", decoder_hidden_size=7)
    with pytest.raises(ValueError, match="val_beam_size must be at least 1"):
        Seq2Seq({"source": 20, "target": 20}, val_beam_size=0)
    model = tiny_model()
    with pytest.raises(ValueError, match="beam_size must be a positive integer"):
        model.translate("s1 s2", beam_size=0)
    with pytest.raises(ValueError, match=r"n_best must lie in \[1, beam_size=2\]"):
        model.predict("s1 s2", beam_size=2, n_best=3)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['beams'\]"):
        model.predict("s1 s2", beams=2)
    with pytest.raises(ValueError, match=r"text\(s\) \[1\] are empty"):
        model.translate(["s1", "   "])
    with pytest.raises(ValueError, match="use beam_size=1 with a temperature"):
        model.translate("s1", beam_size=3, temperature=1.0)
    with pytest.raises(ValueError, match="unknown tokenizer kind 'sentencepiece'"):
        from rnnzoo.tokenizers import tokenizer_from_dict

        tokenizer_from_dict({"kind": "pair", "source": {"kind": "sentencepiece"}, "target": {}})


def test_tokenizers_that_do_not_fit_the_model_are_refused(toy_corpus, tmp_path):
    data = TranslationDataModule(str(toy_corpus))
    model = Seq2Seq({"source": 30, "target": 30}, embedding_size=8, hidden_size=8)
    with pytest.raises(ValueError, match="build both from the same training split"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, datamodule=data)


# BLEU.


def test_bleu_matches_sacrebleu_and_keeps_unknown_words_in_the_reference():
    model = tiny_model()
    target = model.tokenizer.target
    ids = target.encode("t1 t2 t3 t4 .").tolist()
    hypothesis, reference = model.bleu_forms(ids, "T1 t2 zebra t4.")
    assert hypothesis == "t1 t2 t3 t4 <unk>"  # "." was never seen in training
    assert reference == "t1 t2 zebra t4 ."
    hypotheses = ["a man sits in the park .", "two dogs run"]
    references = ["a man is sitting in the park .", "two dogs are running in the snow"]
    metric = SacreBLEUScore(tokenize="none")
    metric.update(hypotheses, [[r] for r in references])
    expected = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none").score
    assert 100 * float(metric.compute()) == pytest.approx(expected, abs=1e-3)


# Checkpoints, the command line, learning.


def test_checkpoint_translates_identically_with_no_dataset_present(toy_corpus, tmp_path, capsys):
    data = TranslationDataModule(str(toy_corpus), batch_size=16)
    model = Seq2Seq(data.vocab_size, embedding_size=16, hidden_size=16, attention="additive", dropout=0.0)
    trainer = quiet_trainer(tmp_path, max_steps=5, limit_val_batches=1)
    trainer.fit(model, datamodule=data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    texts = ["ein hund läuft im park", "frau sitzt", "kind"]
    expected = model.predict(texts, beam_size=3, n_best=2)
    shutil.rmtree(toy_corpus)
    loaded = load_task(str(path))
    assert isinstance(loaded, Seq2Seq) and loaded.tokenizer == model.tokenizer
    assert loaded.predict(texts, beam_size=3, n_best=2) == expected
    capsys.readouterr()
    main(["translate", "--ckpt_path", str(path), "--text", texts[0], "--text+", texts[1], "--beam_size", "3"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["translation"] for line in lines] == [row["translation"] for row in expected[:2]]
    assert lines[0]["source"] == texts[0] and lines[0]["score"] == pytest.approx(expected[0]["score"])
    sources = tmp_path / "sources.txt"
    sources.write_text(f"{texts[2]}\n\n{texts[0]}\n", encoding="utf-8")
    main(["translate", "--ckpt_path", str(path), "--file", str(sources), "--beam_size", "3"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["translation"] for line in lines] == [
        expected[2]["translation"],
        expected[0]["translation"],
    ]  # blank line skipped


def test_translate_command_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["translate", "--ckpt_path", str(tmp_path / "missing.ckpt"), "--text", "ein hund"])
    assert "no checkpoint at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["translate", "--ckpt_path", str(tmp_path / "missing.ckpt")])
    assert "nothing to translate" in capsys.readouterr().err


def test_loss_falls_and_bleu_rises_on_toy_pairs(toy_corpus, tmp_path):
    torch.manual_seed(0)
    data = TranslationDataModule(str(toy_corpus), batch_size=32, eval_batch_size=64)
    model = Seq2Seq(data.vocab_size, embedding_size=32, hidden_size=32, attention="additive", dropout=0.0)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=1)
    before = trainer.validate(model, datamodule=data, verbose=False)[0]
    trainer = quiet_trainer(tmp_path, max_steps=150, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    after = quiet_trainer(tmp_path, limit_val_batches=1).validate(model, datamodule=data, verbose=False)[0]
    assert after["val_loss"] < 0.5 * before["val_loss"]
    assert after["val_bleu"] > before["val_bleu"] + 30


@pytest.mark.slow
def test_loss_falls_on_a_small_slice_of_multi30k(tmp_path):
    folder = shared_dataset("multi30k")
    slice_folder = tmp_path / "multi30k_slice"
    slice_folder.mkdir()
    for split, count in (("train", 2000), ("validation", 64), ("test", 64)):
        lines = (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        (slice_folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    data = TranslationDataModule(str(slice_folder), batch_size=64, eval_batch_size=64, min_freq=1)
    model = Seq2Seq(data.vocab_size, embedding_size=32, hidden_size=32, attention="additive", dropout=0.0)
    trainer = quiet_trainer(tmp_path, max_steps=30, limit_val_batches=0)
    before = quiet_trainer(tmp_path, limit_val_batches=1).validate(model, datamodule=data, verbose=False)[0]
    trainer.fit(model, datamodule=data)
    after = quiet_trainer(tmp_path, limit_val_batches=1).validate(model, datamodule=data, verbose=False)[0]
    assert after["val_loss"] < before["val_loss"] - 1.5
    assert after["val_ppl"] == pytest.approx(math.exp(after["val_loss"]), rel=1e-4)


def test_fit_then_test_and_translate_from_the_command_line(toy_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES / "translation" / "multi30k_de_en-lstm_multiplicative.yaml"
    small = ["--model.embedding_size", "8", "--model.hidden_size", "8", "--model.decoder_hidden_size", "8"]
    common = ["--config", str(recipe), "--data.dataset", str(toy_corpus), *small, "--trainer.precision", "32"]
    main(["fit", *common, "--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false"])
    checkpoint = sorted(tmp_path.rglob("last.ckpt"))[0]
    capsys.readouterr()
    main(["test", *common, "--ckpt_path", str(checkpoint), "--model.test_beam_size", "2"])
    assert "test_bleu" in capsys.readouterr().out
    main(["translate", "--ckpt_path", str(checkpoint), "--text", "ein hund", "--beam_size", "2", "--n_best", "2"])
    result = json.loads(capsys.readouterr().out)
    assert result["source"] == "ein hund" and len(result["n_best"]) == 2
    assert result["translation"] == result["n_best"][0]["translation"]
