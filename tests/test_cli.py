"""The rnnzoo command: every recipe runs, fit -> generate works, bad input gets one clear error."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import LOCAL_COPIES, RECIPES, shared_dataset, shared_file

from rnnzoo.cli import main

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
