"""Pretrained artifacts: save -> load round trips, sha256 checks, the bundled zoo, transfer between tasks."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import LOCAL_COPIES, RECIPES, quiet_trainer, shared_dataset
from lightning import Callback, Trainer

from rnnzoo import (
    Captioner,
    CharTokenizer,
    Classifier,
    GradualUnfreezing,
    LanguageModel,
    LanguageModelDataModule,
    LoadPretrained,
    PairTokenizer,
    RNNTask,
    Seq2Seq,
    Tagger,
    TextTokenizer,
    WordVocabulary,
    get_model_info,
    list_models,
    load_pretrained,
    models_by_task,
    transfer_weights,
)
from rnnzoo.cli import main
from rnnzoo.data.shapes import draw_shape
from rnnzoo.data.tagging import build_char_tokenizer
from rnnzoo.data_state import DataState
from rnnzoo.hub import zoo
from rnnzoo.images import write_ppm
from rnnzoo.serialization import import_class


def char_lm() -> LanguageModel:
    torch.manual_seed(0)
    model = LanguageModel(20, "lstm", hidden_size=16, num_layers=2, dropout=0.0, tie_weights=True)
    model.tokenizer = CharTokenizer("abcdefghijklmnopqrs ")
    return model


def classifier() -> Classifier:
    torch.manual_seed(0)
    model = Classifier(12, 3, "gru", hidden_size=8, pooling="attention", class_weights=[1.0, 2.0, 0.5])
    tokenizer = TextTokenizer.train_word_level(["a b c d e f g h"])
    model.data_state = DataState(tokenizer=tokenizer, labels=["neg", "neu", "pos"], label_names=["neg", "neu", "pos"])
    return model


def seq2seq() -> Seq2Seq:
    torch.manual_seed(0)
    tokenizer = PairTokenizer(
        TextTokenizer.train_word_level(["a b c d e f g h"]), TextTokenizer.train_word_level(["i j k l m n o p"])
    )
    model = Seq2Seq({"source": 12, "target": 12}, encoder_cell="gru", hidden_size=8, attention="additive")
    model.tokenizer = tokenizer
    return model


def tagger() -> Tagger:
    torch.manual_seed(0)
    model = Tagger(3, vocab_size=8, char_vocab_size=8, hidden_size=8, embedding_size=8, crf=True, tag_scheme="BIO")
    model.data_state = DataState(
        tokenizer=WordVocabulary(["<pad>", "<unk>", "a", "b", "c", "d", "e", "f"]),
        char_tokenizer=build_char_tokenizer([["abcdef"]]),
        labels=["O", "B-X", "I-X"],
        label_names=["O", "B-X", "I-X"],
        options={"max_word_length": 10},
    )
    return model


def captioner() -> Captioner:
    torch.manual_seed(0)
    model = Captioner(12, "category", num_categories=2, cell="lstm", hidden_size=8, embedding_size=4)
    names = ["Irish", "Russian"]
    tokenizer = CharTokenizer(["<pad>", "<bos>", "<eos>", *"abcdefghi"])
    model.data_state = DataState(tokenizer=tokenizer, labels=names, label_names=names)
    return model


TASKS = {
    "language_model": char_lm,
    "classifier": classifier,
    "seq2seq": seq2seq,
    "tagger": tagger,
    "captioner": captioner,
}


def outputs(model: RNNTask) -> torch.Tensor:
    model.eval()
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 0]])
    if isinstance(model, LanguageModel):
        return model(tokens)[0]
    if isinstance(model, Seq2Seq):
        return model(tokens, torch.tensor([4, 3]), tokens[:, :3])
    if isinstance(model, Tagger):
        chars = torch.tensor([[[2, 3, 0], [4, 0, 0], [5, 6, 7], [2, 2, 2]], [[3, 0, 0], [6, 5, 0], [7, 0, 0], [0] * 3]])
        return model(tokens, torch.tensor([4, 3]), chars)
    if isinstance(model, Captioner):
        return model(torch.tensor([1, 0]), tokens)
    return model(tokens, torch.tensor([4, 3]))


@pytest.mark.parametrize("name", TASKS)
def test_save_then_load_gives_identical_outputs(name, tmp_path):
    model = TASKS[name]()
    model.save_pretrained(tmp_path / name)
    assert {p.name for p in (tmp_path / name).iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "README.md",
    }
    restored = RNNTask.from_pretrained(tmp_path / name)
    assert type(restored) is type(model)
    torch.testing.assert_close(outputs(restored), outputs(model), rtol=0, atol=0)
    assert restored.tokenizer == model.tokenizer
    assert restored.data_state == model.data_state
    assert type(model).from_pretrained(tmp_path / name).hparams == model.hparams


def test_the_model_card_names_data_recipe_and_metrics(tmp_path):
    card = {"dataset": "stanfordnlp/sst2", "recipe": "recipes/x.yaml", "metrics": {"test_acc": 0.8123}}
    classifier().save_pretrained(tmp_path / "m", model_card_kwargs=card)
    text = (tmp_path / "m" / "README.md").read_text()
    assert "stanfordnlp/sst2" in text and "recipes/x.yaml" in text and "| test_acc | 0.8123 |" in text
    assert "library_name: rnnzoo" in text


def test_a_tampered_file_is_a_sha256_error_naming_it(tmp_path):
    classifier().save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 mismatch for 'model.safetensors'"):
        RNNTask.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda config: config["sha256"].pop("tokenizer.json"),
            "no sha256 of 'tokenizer.json', which would",
        ),
        (lambda config: config["sha256"].pop("model.safetensors"), "lists no sha256 of 'model.safetensors'"),
        (lambda config: config.pop("sha256"), "lists no sha256 of the artifact's files"),
    ],
    ids=["tokenizer", "weights", "none"],
)
def test_every_file_an_artifact_loads_must_be_listed_with_its_sha256(edit, message, tmp_path):
    classifier().save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    edit(config)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        RNNTask.from_pretrained(tmp_path / "m")


def test_one_changed_byte_of_the_tokenizer_is_a_sha256_error(tmp_path):
    classifier().save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "tokenizer.json"
    path.write_text(path.read_text().replace("special", "spacial", 1))  # one byte changed
    with pytest.raises(ValueError, match="sha256 mismatch for 'tokenizer.json'"):
        RNNTask.from_pretrained(tmp_path / "m")


def test_a_future_artifact_format_is_a_clear_error(tmp_path):
    classifier().save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["rnnzoo_format"] = 99
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format 99.*upgrade rnnzoo"):
        RNNTask.from_pretrained(tmp_path / "m")


def test_the_wrong_task_class_is_a_clear_error(tmp_path):
    char_lm().save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match="holds a LanguageModel, not a Classifier"):
        Classifier.from_pretrained(tmp_path / "lm")


def test_a_subclass_of_the_stored_task_loads_its_weights(tmp_path):
    class Shouting(Classifier):
        def predict_batch(self, batch, **options):
            return [{**output, "label": str(output["label"]).upper()} for output in super().predict_batch(batch)]

    model = classifier()
    model.save_pretrained(tmp_path / "clf")
    loaded = Shouting.from_pretrained(tmp_path / "clf")
    assert type(loaded) is Shouting
    torch.testing.assert_close(outputs(loaded), outputs(model), rtol=0, atol=0)
    assert loaded.predict("a b")[0]["label"] == model.predict("a b")[0]["label"].upper()


def test_a_hub_id_offline_is_one_clear_error():
    with pytest.raises(ConnectionError, match="could not download 'someone/no-such-rnn'.*Offline"):
        RNNTask.from_pretrained("someone/no-such-rnn")
    with pytest.raises(FileNotFoundError, match="neither a pretrained model name"):
        RNNTask.from_pretrained("./no/such/folder")


# Transfer: a language model's embedding and backbone under a new head.


def test_transfer_moves_what_fits_and_reports_the_rest():
    source = char_lm()
    target = Classifier(20, 2, "lstm", hidden_size=16, num_layers=2, bidirectional=True, dropout=0.0)
    report = transfer_weights(source, target)
    assert "embedding.weight" in report.loaded
    assert "backbone.layers.1.0.weight_hh_l0" in report.loaded  # layer 2, forward direction
    assert "backbone.layers.0.1.weight_ih_l0" in report.reinitialised  # no reverse direction in the LM
    assert report.reinitialised["head.weight"].startswith("shape differs ([20, 16] in the source, [2, 32] here)")
    assert "head.bias" in report.unused
    torch.testing.assert_close(target.embedding.weight, source.embedding.weight)
    assert target.tokenizer == source.tokenizer
    only_backbone = transfer_weights(source, Classifier(30, 2, "lstm", hidden_size=16, num_layers=2), ["backbone"])
    assert all(name.startswith("backbone") for name in only_backbone.loaded)
    with pytest.raises(ValueError, match="no tensor of the LanguageModel fits the Classifier"):
        transfer_weights(source, Classifier(30, 2, "gru", hidden_size=5, embedding_size=7))


def test_load_pretrained_callback_starts_fit_from_the_artifact(tiny_corpus, tmp_path):
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=4, tbptt_steps=16)
    torch.manual_seed(0)
    source = LanguageModel(data.vocab_size, "gru", hidden_size=16, num_layers=1, dropout=0.0)
    source.tokenizer = data.tokenizer
    source.save_pretrained(tmp_path / "source")
    fine_tuning = LanguageModelDataModule(
        str(tiny_corpus), batch_size=4, tbptt_steps=16, pretrained_tokenizer=str(tmp_path / "source")
    )
    assert fine_tuning.tokenizer == source.tokenizer
    torch.manual_seed(1)
    target = LanguageModel(fine_tuning.vocab_size, "gru", hidden_size=16, num_layers=1, dropout=0.0)
    callback = LoadPretrained(str(tmp_path / "source"))
    trainer = Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[callback],
    )
    target.optimizer_factory = lambda parameters: torch.optim.SGD(parameters, lr=0.0)  # weights stay as loaded
    trainer.fit(target, fine_tuning)
    assert set(callback.report.loaded) == set(source.state_dict())
    torch.testing.assert_close(target.head.weight, source.head.weight)


# The command line: export a checkpoint, then use the artifact.


def test_export_then_generate_from_the_artifact(tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES / "language_model" / "tiny_shakespeare-gru.yaml"
    fit = ["fit", "--config", str(recipe), "--data.dataset", str(tiny_corpus), "--data.batch_size", "4"]
    fit += ["--model.hidden_size", "8", "--trainer.max_steps", "2", "--trainer.val_check_interval", "2"]
    main([*fit, "--trainer.precision", "32", "--trainer.enable_progress_bar", "false"])
    checkpoint = str(sorted(tmp_path.rglob("last.ckpt"))[0])
    main(["export", "--ckpt_path", checkpoint, "--out", "exported", "--metrics", '{"test_loss": 3.2}'])
    assert "| test_loss | 3.2000 |" in (tmp_path / "exported" / "README.md").read_text()
    capsys.readouterr()
    main(["generate", "--model", "exported", "--prompt", "All:", "--max_new_tokens", "10", "--seed", "0"])
    from_artifact = capsys.readouterr().out
    main(["generate", "--ckpt_path", checkpoint, "--prompt", "All:", "--max_new_tokens", "10", "--seed", "0"])
    assert capsys.readouterr().out == from_artifact
    with pytest.raises(SystemExit):
        main(["generate", "--ckpt_path", checkpoint, "--model", "exported"])
    assert "give exactly one of --ckpt_path" in capsys.readouterr().err


# The bundled zoo.


def test_list_models_filters_by_pattern_and_task(monkeypatch):
    entry = dict(dataset="d", recipe="r", command="c", metrics={}, num_params=1)
    entry.update(description="", license="", files={}, data_options={})
    tasks = {"sst2-gru": "Classifier", "sst2-lstm": "Classifier", "imdb-gru": "Classifier", "ewt-lstm": "Tagger"}
    fake = {name: zoo.PretrainedModel(name=name, task=task, **entry) for name, task in tasks.items()}
    monkeypatch.setattr(zoo, "ZOO", fake)
    assert zoo.list_models() == ["ewt-lstm", "imdb-gru", "sst2-gru", "sst2-lstm"]
    assert zoo.list_models("sst2-*") == ["sst2-gru", "sst2-lstm"]
    assert zoo.list_models("*-gru") == ["imdb-gru", "sst2-gru"]
    assert zoo.list_models(task="Tagger") == ["ewt-lstm"] and zoo.list_models("*-lstm", task="Classifier") == [
        "sst2-lstm"
    ]
    assert zoo.models_by_task() == {"Classifier": ["imdb-gru", "sst2-gru", "sst2-lstm"], "Tagger": ["ewt-lstm"]}
    with pytest.raises(
        KeyError, match="no pretrained model 'nope'; available: ewt-lstm, imdb-gru, sst2-gru, sst2-lstm"
    ):
        zoo.get_model_info("nope")


def test_bundled_models_exist_and_are_small():
    names = list_models()
    assert {"tiny_shakespeare-lstm_small", "sst2-gru_small", "ud_en_ewt_upos-lstm_small"} <= set(names)
    # The translator is 7.9 MiB; the two GloVe taggers 16.8 and 17.1 MiB (their 113k-117k-word tables are most of it).
    assert sum(get_model_info(name).size_bytes for name in names) < 56 * 2**20
    for name in names:
        info = get_model_info(name)
        assert (RECIPES.parent / info.recipe).is_file(), info.recipe
        assert info.metrics and info.num_params == sum(p.numel() for p in load_pretrained(name).parameters())


def test_a_tampered_bundled_file_is_a_sha256_error_naming_it(monkeypatch, tmp_path):
    name = "sst2-gru_small"
    info = get_model_info(name)
    copy = tmp_path / name
    copy.mkdir()
    for file in info.files:
        (copy / file).write_bytes((info.folder / file).read_bytes())
    (copy / "tokenizer.json").write_text((copy / "tokenizer.json").read_text().replace("<unk>", "<UNK>", 1))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="sha256 mismatch for 'tokenizer.json'"):
        load_pretrained(name)


def test_bundled_models_work_offline_from_the_command_line(capsys):
    main(["generate", "--model", "tiny_shakespeare-lstm_small", "--prompt", "ROMEO:", "--max_new_tokens", "40"])
    assert capsys.readouterr().out.startswith("ROMEO:")
    main(["classify", "--model", "sst2-gru_small", "--text", "a gorgeous, witty, seductive movie ."])
    assert json.loads(capsys.readouterr().out)["label"] == 1
    main(["tag", "--model", "ud_en_ewt_upos-lstm_small", "--text", "I saw her duck ."])
    tags = json.loads(capsys.readouterr().out)["tags"]
    assert len(tags) == 5 and (tags[0], tags[1], tags[-1]) == ("PRON", "VERB", "PUNCT")


def test_there_is_a_bundled_model_for_every_task_type():
    assert set(models_by_task()) == {
        "Captioner", "Classifier", "LanguageModel", "Seq2Seq", "SequencePredictor", "Tagger",
    }  # fmt: skip


def test_bundled_generators_translate_name_and_caption_from_the_command_line(tmp_path, capsys):
    main(
        [
            "translate",
            "--model",
            "multi30k_de_en-gru_small",
            "--text",
            "Ein Hund läuft durch den Schnee .",
            "--beam_size",
            "5",
        ]
    )
    translation = json.loads(capsys.readouterr().out)["translation"]
    assert "dog" in translation and "snow" in translation
    main(["caption", "--model", "names-lstm", "--condition", "Russian", "--num_samples", "3", "--seed", "0"])
    names = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert len(names) == 3 and all(name and name[0].isupper() for name in names)
    image = tmp_path / "shape.ppm"
    write_ppm(image, draw_shape("triangle", "green", "right").permute(2, 0, 1))
    main(["caption", "--model", "shapes-lstm", "--image", str(image), "--beam_size", "3"])
    assert json.loads(capsys.readouterr().out)["text"].endswith("green triangle on the right")  # one of its captions


def test_the_bundled_causal_frame_tagger_streams_what_it_tags_whole():
    tagger = load_pretrained("gesture_phase-mingru")
    frames = torch.randn(40, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    whole, state, streamed = tagger.tag_frames(frames)[0], None, []
    for frame in frames:
        phase, state = tagger.tag_stream(frame, state)
        streamed.append(phase)
    assert streamed == whole and set(whole) <= {"rest", "preparation", "stroke", "hold", "retraction"}
    with pytest.raises(ValueError, match="bidirectional"):
        load_pretrained("gesture_phase-bilstm").tag_stream(frames[0])


def test_the_bundled_entity_tagger_finds_the_people_places_and_products_of_a_tweet():
    tagger = load_pretrained("wnut17-lstm_crf_glove")
    assert tagger.data_state.options["embeddings"]["frozen"] is True  # its card and config say which vectors it used
    (output,) = tagger.predict("flying to London with Barack Obama to buy an iPhone from Apple")
    tags = dict(zip(output["tokens"], output["tags"], strict=True))
    assert tags["London"] == "B-location" and (tags["Barack"], tags["Obama"]) == ("B-person", "I-person")
    assert (tags["iPhone"], tags["Apple"]) == ("B-product", "B-corporation") and tags["flying"] == "O"


def test_the_bundled_adding_problem_model_adds_the_two_marked_numbers():
    values = torch.rand(8, 100, generator=torch.Generator().manual_seed(0))
    markers = torch.zeros(8, 100)
    markers[:, 10], markers[:, 70] = 1.0, 1.0
    outputs = load_pretrained("adding_T100-gru").predict(torch.stack([values, markers], dim=-1))
    predicted = torch.tensor([output["prediction"] for output in outputs])
    assert (predicted - (values[:, 10] + values[:, 70])).abs().max() < 0.1  # predicting 1 would be off by up to 1


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_bundled_models_reproduce_their_card_metrics(name, tmp_path):
    info = get_model_info(name)
    recipe = yaml.safe_load((RECIPES.parent / info.recipe).read_text())
    options = {**recipe["data"]["init_args"], **info.data_options}
    if info.dataset in LOCAL_COPIES:  # else generated (shapes) or synthetic (the adding problem)
        options["dataset"] = str(shared_dataset(LOCAL_COPIES[info.dataset]))
    data_class = import_class(recipe["data"]["class_path"])
    if "pretrained_tokenizer" in inspect.signature(data_class).parameters:
        options["pretrained_tokenizer"] = name  # else the data rebuilds the same vocabularies from its training split
        for option in ("extend_vocabulary", "max_new_words"):  # already in that tokenizer
            options.pop(option, None)
    elif options.get("extend_vocabulary"):  # rebuilt from train and the vectors file: the recipe's path, read locally
        folder, file = Path(options["extend_vocabulary"]).parts[-2:]
        options["extend_vocabulary"] = str(shared_dataset(folder) / file)
    data = data_class(**options)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    measured = trainer.test(load_pretrained(name), data, verbose=False)[0]
    for metric, value in info.metrics.items():
        assert measured[metric] == pytest.approx(value, abs=2e-3), metric


def test_gradual_unfreezing_opens_one_group_per_epoch_at_discriminative_rates(tiny_corpus, tmp_path):
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=4, tbptt_steps=16)
    torch.manual_seed(0)
    model = LanguageModel(data.vocab_size, "lstm", hidden_size=16, num_layers=2, dropout=0.0)
    model.optimizer_factory = lambda parameters: torch.optim.SGD(parameters, lr=0.5)
    seen = []

    class Record(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            parts = (pl_module.embedding, *pl_module.backbone.layers, pl_module.head)
            trainable = [all(p.requires_grad for p in part.parameters()) for part in parts]
            seen.append((trainable, [group["lr"] for group in trainer.optimizers[0].param_groups]))

    trainer = quiet_trainer(
        tmp_path, max_epochs=4, limit_train_batches=2, limit_val_batches=0, callbacks=[GradualUnfreezing(), Record()]
    )
    trainer.fit(model, data)
    assert [trainable for trainable, _ in seen] == [
        [False, False, False, True],  # the head alone
        [False, False, True, True],  # then the top recurrent layer
        [False, True, True, True],
        [True, True, True, True],  # the embedding last
    ]
    assert seen[-1][1] == pytest.approx([0.5, 0.5 / 2.6, 0.5 / 2.6**2, 0.5 / 2.6**3])


def test_export_refuses_a_bundled_models_name_and_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    for out, message in [
        ("sst2-gru_small", "is the name of a bundled model: --model sst2-gru_small would load the bundled one"),
        ("notes.txt", "--out 'notes.txt' is a file: give a folder"),
    ]:
        with pytest.raises(SystemExit):
            main(["export", "--ckpt_path", "missing.ckpt", "--out", out])
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error
    assert not (tmp_path / "sst2-gru_small").exists() and (tmp_path / "notes.txt").read_text() == "mine\n"


def test_transfer_moves_weights_under_weight_drop_both_ways():
    """AWD-LSTM's DropConnect stores weight_hh as ...parametrizations.weight_hh_l0.original: the same weight."""
    torch.manual_seed(0)
    source = LanguageModel(30, "lstm", hidden_size=16, num_layers=1, dropout=0.0, weight_drop=0.5)
    assert any(".parametrizations." in name for name in source.state_dict())
    plain = Classifier(30, 2, "lstm", hidden_size=16, embedding_size=16, bidirectional=False)
    report = transfer_weights(source, plain, ["embedding", "backbone"])
    assert set(report.loaded) == {name for name in plain.state_dict() if name.startswith(("embedding", "backbone"))}
    assert not [name for name in report.unused if "weight_hh" in name]
    source.eval()  # DropConnect off: the parametrized weight is the stored one
    recurrent = dict(source.backbone.named_parameters())
    stored = next(value for name, value in recurrent.items() if name.endswith("weight_hh_l0.original"))
    torch.testing.assert_close(plain.backbone.layers[0][0].weight_hh_l0, stored)
    back = LanguageModel(30, "lstm", hidden_size=16, num_layers=1, dropout=0.0, weight_drop=0.5)
    again = transfer_weights(plain, back, ["backbone"])
    assert any(name.endswith("weight_hh_l0.original") for name in again.loaded)
