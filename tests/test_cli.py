"""The rnnzoo command: every recipe runs, fit -> generate works, bad input gets one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import LOCAL_COPIES, RECIPES, shared_dataset, shared_file

from rnnzoo import load_task
from rnnzoo.cli import COMMANDS, main

RECIPE_FILES = sorted(RECIPES.rglob("*.yaml"))


def test_there_are_recipes():
    assert any(path.parent.name == "language_model" for path in RECIPE_FILES)


@pytest.mark.parametrize("recipe", RECIPE_FILES, ids=[str(p.relative_to(p.parents[1])) for p in RECIPE_FILES])
def test_every_recipe_runs_one_step(recipe, tmp_path, monkeypatch):
    """fast_dev_run on every YAML under recipes/, with its hub dataset swapped for the local copy.

    A recipe whose dataset has no local copy is only parsed and type-checked; synthetic data
    (no dataset, or ``generated:...``) runs as it is. A hub configuration
    name or revision means nothing to a local copy of one configuration, so it is reset with the
    dataset; a recipe that names a local folder (``../shared/data/...``) keeps its configuration.
    """
    config = yaml.safe_load(recipe.read_text())
    data_args = config["data"]["init_args"]
    hub_id = data_args.get("dataset")
    monkeypatch.chdir(tmp_path)
    if hub_id is None or hub_id.startswith("generated:"):  # synthetic data, made by the package itself
        main(["fit", "--config", str(recipe), "--trainer.fast_dev_run", "true"])
        return
    if hub_id not in LOCAL_COPIES:
        pytest.fail(f"{recipe.name}: add {hub_id!r} and its local copy (or None) to LOCAL_COPIES in tests/conftest.py")
    if LOCAL_COPIES[hub_id] is None:
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", "--config", str(recipe), "--print_config"])
        assert exit_info.value.code == 0
        return
    local = shared_dataset(LOCAL_COPIES[hub_id])
    hub_only = [arg for option in ("name", "revision") if option in data_args for arg in (f"--data.{option}", "null")]
    if hub_id.startswith("../"):  # a local folder keeps its configuration
        hub_only = []
    files = shared_file_arguments(config)
    source = data_args.get("pretrained_tokenizer")
    if isinstance(source, str) and source.startswith("runs/"):  # another recipe's exported run (ULMFiT)
        export_the_run_of(source, local)
    main(
        [
            "fit",
            "--config",
            str(recipe),
            "--data.dataset",
            str(local),
            *hub_only,
            *files,
            "--trainer.fast_dev_run",
            "true",
        ]
    )


def export_the_run_of(source: str, dataset: Path) -> None:
    """Make ``runs/<name>/export`` as its recipe says (``fit``, then ``export``), with two training steps."""
    name = Path(source).parts[1]
    (recipe,) = [path for path in RECIPE_FILES if f"name: {name}}}" in path.read_text()]
    steps = ["--trainer.max_steps", "2", "--trainer.val_check_interval", "1", "--trainer.limit_val_batches", "1"]
    main(["fit", "--config", str(recipe), "--data.dataset", str(dataset), *steps, "--trainer.max_time", "null"])
    (checkpoint,) = Path("runs", name).rglob("last.ckpt")
    main(["export", "--ckpt_path", str(checkpoint), "--out", source])


def shared_file_arguments(config: dict) -> list[str]:
    """Overrides that point a recipe's ``../shared/data/...`` files (word vectors) at their absolute path, or skip.

    Recipes name them relative to the repository, where ``rnnzoo fit`` runs; the test runs elsewhere.
    """
    arguments = []
    for section, option in (("model", "embeddings"), ("data", "extend_vocabulary")):
        value = config.get(section, {}).get("init_args", {}).get(option)
        if isinstance(value, str) and value.startswith("../shared/data/"):
            arguments += [f"--{section}.{option}", str(shared_file(value))]
    return arguments


def test_fit_then_generate_from_the_checkpoint(tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES / "language_model" / "tiny_shakespeare-lstm.yaml"
    main(
        [
            "fit",
            "--config",
            str(recipe),
            "--data.dataset",
            str(tiny_corpus),
            "--data.batch_size",
            "4",
            "--model.hidden_size",
            "16",
            "--trainer.max_steps",
            "3",
            "--trainer.val_check_interval",
            "3",
            "--trainer.precision",
            "32",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    checkpoints = sorted(tmp_path.rglob("last.ckpt"))
    assert checkpoints, "fit saved no checkpoint"
    capsys.readouterr()
    main(["generate", "--ckpt_path", str(checkpoints[0]), "--prompt", "All:", "--max_new_tokens", "30", "--seed", "1"])
    text = capsys.readouterr().out
    # The prompt, then exactly 30 new characters, then print's newline.
    assert text.startswith("All:") and len(text) == len("All:") + 30 + len("\n")
    main(
        [
            "test",
            "--config",
            str(recipe),
            "--data.dataset",
            str(tiny_corpus),
            "--model.hidden_size",
            "16",
            "--trainer.precision",
            "32",
            "--ckpt_path",
            str(checkpoints[0]),
        ]
    )
    assert "test_bpc" in capsys.readouterr().out


def test_print_config_shows_the_recipe(capsys):
    recipe = RECIPES / "language_model" / "tiny_shakespeare-gru.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(recipe), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["cell"] == "gru"
    assert printed["data"]["init_args"]["dataset"] == "karpathy/tiny_shakespeare"


def test_unknown_cell_is_one_clear_error(tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES / "language_model" / "tiny_shakespeare-lstm.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(recipe), "--data.dataset", str(tiny_corpus), "--model.cell", "lstn"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "rnnzoo: error: unknown cell 'lstn'; registered cells: gru, indrnn" in error
    assert "Traceback" not in error


def test_missing_dataset_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES / "language_model" / "tiny_shakespeare-lstm.yaml"
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(recipe), "--data.dataset", "./no_such_folder"])
    assert "dataset folder './no_such_folder' does not exist" in capsys.readouterr().err


def test_generate_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--ckpt_path", str(tmp_path / "missing.ckpt")])
    assert "no checkpoint at" in capsys.readouterr().err


def test_fit_then_classify_from_the_checkpoint(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "reviews"
    folder.mkdir()
    rows = [{"text": "a good film", "label": "pos"}, {"text": "a bad film", "label": "neg"}] * 8
    for split in ("train", "validation", "test"):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES / "classification" / "rotten_tomatoes-gru.yaml"
    overrides = ["--data.dataset", str(folder), "--data.batch_size", "4", "--model.hidden_size", "8"]
    overrides += ["--trainer.max_epochs", "1", "--trainer.precision", "32", "--trainer.enable_progress_bar", "false"]
    main(["fit", "--config", str(recipe), *overrides])
    checkpoint = str(sorted(tmp_path.rglob("last.ckpt"))[0])
    (tmp_path / "texts.txt").write_text("a good film\n\nnever seen words\n")
    capsys.readouterr()
    main(["classify", "--ckpt_path", checkpoint, "--text", "a bad film", "--file", str(tmp_path / "texts.txt")])
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in results] == ["a bad film", "a good film", "never seen words"]
    assert all(r["label"] in ("neg", "pos") and sum(r["probabilities"].values()) == pytest.approx(1) for r in results)
    with pytest.raises(SystemExit):
        main(["generate", "--ckpt_path", checkpoint])
    assert "holds a Classifier, which does not generate text" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", "--ckpt_path", checkpoint])
    assert "nothing to classify" in capsys.readouterr().err


# Clear errors for bad files and checkpoints, and no code run from a crafted checkpoint.


FIRST_RUN_OUTPUT: list[str] = []


def trained_classifier_fixture_output() -> str:
    return FIRST_RUN_OUTPUT[-1]


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory):
    """A classifier checkpoint of the rotten_tomatoes-gru recipe (hidden size 8), fitted with --ckpt_path last."""
    import contextlib
    import io
    import os

    folder = tmp_path_factory.mktemp("trained_classifier")
    rows = [{"text": "a good film", "label": "pos"}, {"text": "a bad film", "label": "neg"}] * 8
    for split in ("train", "validation", "test"):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    overrides = ["--data.dataset", str(folder), "--data.batch_size", "4", "--model.hidden_size", "8"]
    overrides += ["--trainer.max_epochs", "1", "--trainer.precision", "32", "--trainer.enable_progress_bar", "false"]
    before, errors = os.getcwd(), io.StringIO()
    os.chdir(folder)
    try:
        with contextlib.redirect_stderr(errors):
            main(
                [
                    "fit",
                    "--config",
                    str(RECIPES / "classification" / "rotten_tomatoes-gru.yaml"),
                    *overrides,
                    "--ckpt_path",
                    "last",
                ]
            )
    finally:
        os.chdir(before)
    FIRST_RUN_OUTPUT.append(errors.getvalue())
    return folder, str(sorted(folder.rglob("last.ckpt"))[0]), overrides


def one_line_error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in error
    return error


def test_a_bom_at_the_start_of_a_file_is_not_part_of_the_first_text(trained_classifier, tmp_path, capsys):
    _, checkpoint, _ = trained_classifier
    (tmp_path / "bom.txt").write_bytes("\ufeffa good film\r\na bad film\r\n".encode())
    capsys.readouterr()
    main(["classify", "--ckpt_path", checkpoint, "--file", str(tmp_path / "bom.txt")])
    from_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    main(["classify", "--ckpt_path", checkpoint, "--text", "a good film", "--text+", "a bad film"])
    given = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in from_file] == ["a good film", "a bad film"]
    assert from_file == given


def test_classify_file_to_output_streams_one_json_line_per_input_line(trained_classifier, tmp_path, monkeypatch):
    import rnnzoo.cli

    _, checkpoint, _ = trained_classifier
    texts = [f"film number {i} was {'good' if i % 2 else 'bad'}" for i in range(11)]
    (tmp_path / "in.txt").write_text("\n".join(texts[:5]) + "\n\n" + "\n".join(texts[5:]) + "\n", encoding="utf-8")
    monkeypatch.setattr(rnnzoo.cli, "BLOCK_LINES", 4)  # three blocks: 4 + 4 + 3 lines
    main(["classify", "--ckpt_path", checkpoint, "--file", str(tmp_path / "in.txt"), "--output", str(tmp_path / "o")])
    written = [json.loads(line) for line in (tmp_path / "o").read_text(encoding="utf-8").splitlines()]
    expected = load_task(checkpoint).predict(texts)
    assert [row.pop("text") for row in written] == texts
    assert [row["label"] for row in written] == [row["label"] for row in expected]
    for row, oracle in zip(written, expected, strict=True):
        assert row["probabilities"] == pytest.approx(oracle["probabilities"], abs=1e-6)


def test_predict_output_writes_the_test_split_as_json_lines(trained_classifier, tmp_path, monkeypatch):
    folder, checkpoint, overrides = trained_classifier
    overrides = list(overrides)  # the fixture's list is shared by the module's tests
    files = {split: str(folder / f"{split}.jsonl") for split in ("train", "validation", "test")}
    at = overrides.index("--data.dataset")  # the same rows, read as local files rather than a folder
    overrides[at : at + 2] = ["--data.dataset", "null", "--data.data_files", json.dumps(files)]
    monkeypatch.chdir(tmp_path)
    recipe = str(RECIPES / "classification" / "rotten_tomatoes-gru.yaml")
    output = tmp_path / "predictions.jsonl"
    main(["predict", "--config", recipe, *overrides, "--ckpt_path", checkpoint, "--output", str(output)])
    written = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    texts = [json.loads(line)["text"] for line in Path(files["test"]).read_text().splitlines()]
    expected = load_task(checkpoint).predict(texts)
    assert len(written) == len(texts) == 16
    assert [row["label"] for row in written] == [row["label"] for row in expected]
    for row, oracle in zip(written, expected, strict=True):
        assert row["probabilities"] == pytest.approx(oracle["probabilities"], abs=1e-5)


def test_a_file_that_is_not_utf8_or_is_a_folder_is_one_clear_error(trained_classifier, tmp_path, capsys):
    _, checkpoint, _ = trained_classifier
    (tmp_path / "latin1.txt").write_bytes("a good film\nun café\n".encode("latin-1"))
    error = one_line_error(capsys, "classify", "--ckpt_path", checkpoint, "--file", str(tmp_path / "latin1.txt"))
    assert "is not UTF-8 text: line 2 holds the bytes b'\\xe9\\n'" in error and "iconv" in error
    error = one_line_error(capsys, "classify", "--ckpt_path", checkpoint, "--file", str(tmp_path))
    assert "is a folder: give a text file" in error


def test_a_crafted_checkpoint_given_to_a_command_runs_no_code(tmp_path, capsys):
    import torch

    marker = tmp_path / "payload_ran"

    class CreatesAFile:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"state_dict": {}, "rnnzoo": {"task": "rnnzoo.Classifier"}, "x": CreatesAFile()}, tmp_path / "c.ckpt")
    error = one_line_error(capsys, "classify", "--ckpt_path", str(tmp_path / "c.ckpt"), "--text", "hello")
    assert "holds objects other than tensors and plain data" in error
    assert not marker.exists()


def test_an_empty_or_garbage_checkpoint_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "notes.ckpt").write_text("my notes\n")
    assert "is empty (0 bytes)" in one_line_error(capsys, "generate", "--ckpt_path", str(tmp_path / "empty.ckpt"))
    error = one_line_error(capsys, "tag", "--ckpt_path", str(tmp_path / "notes.ckpt"), "--text", "a b")
    assert "is not a checkpoint" in error
    recipe = str(RECIPES / "language_model" / "tiny_shakespeare-lstm.yaml")
    error = one_line_error(capsys, "test", "--config", recipe, "--ckpt_path", str(tmp_path / "empty.ckpt"))
    assert "is empty (0 bytes)" in error  # before Lightning reads the checkpoint's options


def test_a_checkpoint_of_another_task_or_other_data_is_refused_by_the_recipe(trained_classifier, tmp_path, capsys):
    folder, checkpoint, overrides = trained_classifier
    lm = RECIPES / "language_model" / "tiny_shakespeare-lstm.yaml"
    error = one_line_error(
        capsys, "test", "--config", str(lm), "--data.dataset", str(folder), "--ckpt_path", checkpoint
    )
    assert "holds a Classifier, but this recipe's model is a LanguageModel" in error
    other = tmp_path / "other_reviews"
    other.mkdir()
    rows = [{"text": "a truly good film", "label": "pos"}, {"text": "a very bad film", "label": "neg"}] * 8
    for split in ("train", "validation", "test"):
        (other / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = str(RECIPES / "classification" / "rotten_tomatoes-gru.yaml")
    error = one_line_error(
        capsys, "fit", "--config", recipe, *overrides, "--data.dataset", str(other), "--ckpt_path", checkpoint
    )
    assert "was written by a Classifier built with other options (vocab_size: 8 there, 10 here)" in error


def test_fit_with_ckpt_path_last_and_no_earlier_run_starts_a_new_one(trained_classifier):
    folder, _, _ = trained_classifier
    said = trained_classifier_fixture_output()
    assert "rnnzoo: no last.ckpt under runs/rotten_tomatoes-gru: starting a new run" in said
    assert len(list(folder.rglob("last.ckpt"))) == 1


def test_test_with_ckpt_path_best_or_last_in_a_new_process_takes_the_newest_runs_checkpoint(
    trained_classifier, monkeypatch, capsys
):
    """In a fresh process Lightning would look in the new run's empty folder; rnnzoo reads the newest run's."""
    folder, last, overrides = trained_classifier
    monkeypatch.chdir(folder)
    recipe = str(RECIPES / "classification" / "rotten_tomatoes-gru.yaml")
    for which in ("best", "last"):
        main(["test", "--config", recipe, *overrides, "--ckpt_path", which])
        said = capsys.readouterr()
        assert "test_acc" in said.out
        if which == "best":
            (best,) = folder.rglob("epoch=*.ckpt")
            expected = "using the best checkpoint of runs/rotten_tomatoes-gru/version_0 (val_acc "
            assert expected in said.err and said.err.rstrip().endswith(str(best.relative_to(folder)))
        else:
            expected = (
                f"using the last checkpoint of runs/rotten_tomatoes-gru/version_0: {Path(last).relative_to(folder)}"
            )
            assert expected in said.err
    assert len(list(folder.rglob("version_*"))) == 3  # each test logged into a new folder, which saved nothing


def test_ckpt_path_best_without_a_recorded_best_or_without_runs_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = str(RECIPES / "classification" / "rotten_tomatoes-gru.yaml")
    error = one_line_error(capsys, "test", "--config", recipe, "--ckpt_path", "best")
    assert "--ckpt_path best: no run under runs/rotten_tomatoes-gru saved a checkpoint; fit the recipe first" in error
    checkpoints = tmp_path / "runs" / "rotten_tomatoes-gru" / "version_3" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save({"state_dict": {}, "callbacks": {"Checkpoint{}": {"best_model_path": ""}}}, checkpoints / "last.ckpt")
    error = one_line_error(capsys, "test", "--config", recipe, "--ckpt_path", "best")
    assert "the run in runs/rotten_tomatoes-gru/version_3 recorded no best checkpoint" in error
    moved = {"best_model_path": "/elsewhere/checkpoints/epoch=2.ckpt", "best_model_score": torch.tensor(0.5)}
    torch.save({"state_dict": {}, "callbacks": {"Checkpoint{}": moved}}, checkpoints / "last.ckpt")
    error = one_line_error(capsys, "test", "--config", recipe, "--ckpt_path", "best")
    assert (
        "the best checkpoint '/elsewhere/checkpoints/epoch=2.ckpt' of runs/rotten_tomatoes-gru/version_3 is gone"
        in error
    )


def test_test_from_the_checkpoint_of_a_task_that_lacks_a_linked_option(tmp_path, monkeypatch, capsys):
    """A SequencePredictor has no vocab_size: its checkpoint must not store the CLI link's target, or test fails."""
    monkeypatch.chdir(tmp_path)
    recipe = str(RECIPES / "long_range" / "adding_T100-gru.yaml")
    small = ["--data.train_size", "64", "--data.length", "10", "--trainer.max_steps", "2"]
    small += ["--data.val_size", "64", "--data.test_size", "64", "--trainer.val_check_interval", "1"]
    small += ["--trainer.enable_progress_bar", "false"]
    main(["fit", "--config", recipe, *small])
    (last,) = tmp_path.rglob("last.ckpt")
    assert "vocab_size" not in torch.load(last, weights_only=True)["hyper_parameters"]
    main(["test", "--config", recipe, *small, "--ckpt_path", "best"])
    assert "test_loss" in capsys.readouterr().out


def test_an_unknown_or_absent_device_is_one_clear_error(capsys):
    error = one_line_error(capsys, "generate", "--model", "tiny_shakespeare-lstm_small", "--device", "gpu")
    assert "unknown --device 'gpu': give cpu, cuda, cuda:N or mps" in error
    if not torch.cuda.is_available():
        error = one_line_error(capsys, "generate", "--model", "tiny_shakespeare-lstm_small", "--device", "cuda")
        assert "torch finds no CUDA device here" in error


def test_a_checkpoint_of_a_subclass_whose_module_is_absent_names_the_module(trained_classifier, tmp_path, capsys):
    _, checkpoint, _ = trained_classifier
    stored = torch.load(checkpoint, weights_only=True)
    stored["rnnzoo"]["task"] = "my_tasks.MyClassifier"  # as a user's own subclass of Classifier writes it
    torch.save(stored, tmp_path / "mine.ckpt")
    error = one_line_error(capsys, "classify", "--ckpt_path", str(tmp_path / "mine.ckpt"), "--text", "a good film")
    assert "its module 'my_tasks' is not importable here" in error and "PYTHONPATH" in error


def test_inputs_a_new_user_tries_are_clear_errors_or_work(tmp_path, capsys):
    error = one_line_error(capsys, "generate", "--model", "tiny_shakespeare-lstm_small", "--max_new_tokens", "-1")
    assert "max_new_tokens of a language model) must be a positive number of tokens, got -1" in error
    assert "are empty" in one_line_error(capsys, "generate", "--model", "tiny_shakespeare-lstm_small", "--prompt", "")
    error = one_line_error(capsys, "classify", "--model", "sst2-gru_small", "--text", "")
    assert "there is nothing to classify" in error
    assert "hold no words" in one_line_error(capsys, "tag", "--model", "ud_en_ewt_upos-lstm_small", "--text", " ")
    long = tmp_path / "long.txt"
    long.write_text("good " * 20_000 + "\n")  # one 100,000-character input
    main(["classify", "--model", "sst2-gru_small", "--file", str(long)])
    assert json.loads(capsys.readouterr().out)["label"] in (0, 1)


def test_rnnzoo_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert exit_info.value.code == 0
    assert listed == {"fit", "validate", "test", "predict", *COMMANDS}
