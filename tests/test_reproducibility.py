"""Same seed, same result; and a run killed with kill -9 and resumed ends with the uninterrupted run's weights.

Every run here is a real ``rnnzoo fit`` subprocess of a recipe (each with its own hash seed), on
tiny data, with ``--trainer.deterministic true``; weights are compared bit for bit.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import RECIPES, REPO, TINY_TEXT, write_jsonl

LM = RECIPES / "language_model" / "tiny_shakespeare-lstm_small.yaml"
CLASSIFIER = RECIPES / "classification" / "rotten_tomatoes-gru.yaml"
COMMON = ["--trainer.precision", "32", "--trainer.enable_progress_bar", "false", "--trainer.deterministic", "true"]
COMMON += ["--trainer.max_time", "null", "--trainer.enable_model_summary", "false"]
SETTINGS = {
    "language_model": [
        LM, "--data.batch_size", "2", "--data.eval_batch_size", "2", "--data.tbptt_steps", "16",
        "--data.random_tbptt_length", "true",
        "--model.hidden_size", "8", "--model.num_layers", "2", "--model.dropout", "0.3",
        "--trainer.max_steps", "60", "--trainer.val_check_interval", "25", "--trainer.log_every_n_steps", "5",
    ],
    "classifier": [
        CLASSIFIER, "--data.batch_size", "4", "--data.eval_batch_size", "8", "--data.pool_batches", "3",
        "--model.hidden_size", "8", "--model.embedding_size", "8", "--trainer.max_epochs", "3",
        "--trainer.log_every_n_steps", "5",
    ],
}  # fmt: skip
SETTINGS |= {f"{task}_streaming": [*SETTINGS[task], "--data.streaming", "true"] for task in list(SETTINGS)}
"""Recipe and overrides per task: dropout on, several epochs (LM: 44 chunks an epoch, 42 to 46 when streamed;
classifier: 15 batches, bucketed in pools of 3), validation mid-epoch (LM) or per epoch (classifier); each also
with its data read as a stream."""


def lm_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = TINY_TEXT.split("\n")
    for split, part in (("train", lines), ("validation", lines[:12]), ("test", lines[12:24])):
        (folder / f"{split}.txt").write_text("\n".join(part), encoding="utf-8")
    return folder


def reviews(folder: Path) -> Path:
    rng = random.Random(0)
    words = {"pos": ["good", "great", "fun"], "neg": ["bad", "dull", "awful"]}
    filler = ["the", "film", "was", "a", "plot", "and", "it", "very", "long"]

    def rows(count):
        labels = [rng.choice(["pos", "neg"]) for _ in range(count)]
        texts = [" ".join([*rng.sample(filler, rng.randint(0, 8)), rng.choice(words[label])]) for label in labels]
        return [{"text": text, "label": label} for text, label in zip(texts, labels, strict=True)]

    return write_jsonl(folder, {"train": rows(60), "validation": rows(16), "test": rows(16)})


DATA = {"language_model": lm_corpus, "classifier": reviews}
DATA |= {f"{task}_streaming": make for task, make in list(DATA.items())}


def fit_command(task: str, data: Path, *extra: str, recipe: Path | None = None) -> list[str]:
    default, *overrides = SETTINGS[task]
    recipe = recipe or default
    command = [sys.executable, "-m", "rnnzoo.cli", "fit", "--config", str(recipe), "--data.dataset", str(data)]
    return [*command, *overrides, *COMMON, *extra]


def environment(hash_seed: int, *paths: Path) -> dict[str, str]:
    return {
        **os.environ, "PYTHONPATH": os.pathsep.join(map(str, (REPO, *paths))), "PYTHONHASHSEED": str(hash_seed),
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
    }  # fmt: skip


def fit(
    task: str, data: Path, run_dir: Path, *extra: str, hash_seed: int = 0, recipe: Path | None = None
) -> subprocess.CompletedProcess:
    run_dir.mkdir(parents=True, exist_ok=True)
    command = fit_command(task, data, *extra, recipe=recipe)
    env = environment(hash_seed, run_dir.parent)
    done = subprocess.run(command, cwd=run_dir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def last_checkpoint(run_dir: Path) -> dict:
    (path,) = run_dir.rglob("last.ckpt")
    return torch.load(path, weights_only=True)


def validation_metrics(run_dir: Path) -> list[dict[str, str]]:
    (path,) = run_dir.rglob("metrics.csv")
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    return [
        {k: v for k, v in row.items() if k.startswith("val_") or k == "step"} for row in rows if row.get("val_loss")
    ]


def assert_same_weights(one: dict, other: dict) -> float:
    assert one.keys() == other.keys()
    largest = max((one[name] - other[name]).abs().max().item() for name in one)
    assert all(torch.equal(one[name], other[name]) for name in one), f"largest weight difference {largest}"
    return largest


@pytest.mark.parametrize("task", sorted(SETTINGS))
def test_same_seed_same_metrics_and_weights(task, tmp_path):
    data = DATA[task](tmp_path / "data")
    fit(task, data, tmp_path / "one", hash_seed=1)
    fit(task, data, tmp_path / "two", hash_seed=2)
    metrics = validation_metrics(tmp_path / "one")
    assert len(metrics) >= 2
    assert metrics == validation_metrics(tmp_path / "two")
    one, two = last_checkpoint(tmp_path / "one"), last_checkpoint(tmp_path / "two")
    assert one["global_step"] == two["global_step"] > 0
    assert_same_weights(one["state_dict"], two["state_dict"])


def test_another_seed_gives_other_weights(tmp_path):
    """The comparison above is not vacuous: the seed does reach the weights."""
    data = reviews(tmp_path / "data")
    fit("classifier", data, tmp_path / "one")
    fit("classifier", data, tmp_path / "other", "--seed_everything", "7")
    one, other = last_checkpoint(tmp_path / "one")["state_dict"], last_checkpoint(tmp_path / "other")["state_dict"]
    assert not all(torch.equal(one[name], other[name]) for name in one)


# Exact resume: kill -9 mid-epoch, then `fit --ckpt_path last`, ends with the uninterrupted run's weights.

PACE = """
import time
from pathlib import Path

from lightning import Callback


class Pace(Callback):
    \"\"\"Write the step reached after every batch (for the test to kill the run at), a little slowly.\"\"\"

    def on_train_batch_end(self, trainer, *args):
        Path("progress.txt").write_text(str(trainer.global_step))
        time.sleep(0.05)
"""
KILLS = {"language_model": (11, 50), "classifier": (8, 26)}
KILLS |= {f"{task}_streaming": steps for task, steps in list(KILLS.items())}
"""Steps after which the run is killed, once in the first epoch and once in the second (after a first resume)."""


def paced_recipe(task: str, folder: Path) -> Path:
    """The task's recipe with last.ckpt refreshed every 3 steps and the Pace callback."""
    (folder / "pace.py").write_text(PACE)
    config = yaml.safe_load(SETTINGS[task][0].read_text())
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"] == "rnnzoo.Checkpoint":
            callback["init_args"]["last_every_n_steps"] = 3
    config["trainer"]["callbacks"].append({"class_path": "pace.Pace"})
    path = folder / f"{task}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_until_killed(task: str, data: Path, run_dir: Path, recipe: Path, step: int) -> tuple[int, bool]:
    """Start ``fit --ckpt_path last``, kill -9 it once it passed ``step``; the last.ckpt it left: step, mid-epoch."""
    command = fit_command(task, data, "--ckpt_path", "last", recipe=recipe)
    progress = run_dir / "progress.txt"
    progress.unlink(missing_ok=True)
    env = environment(0, recipe.parent)
    process = subprocess.Popen(command, cwd=run_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        text = progress.read_text() if progress.exists() else ""
        if text.isdigit() and int(text) >= step:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    _, errors = process.communicate()
    assert process.returncode == -signal.SIGKILL, errors.decode()[-3000:]  # killed, not finished
    checkpoint = last_checkpoint(run_dir)
    batches = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    return checkpoint["global_step"], 0 < batches["current"]["completed"] and not batches["is_last_batch"]


@pytest.mark.parametrize("task", sorted(SETTINGS))
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(task, tmp_path):
    data = DATA[task](tmp_path / "data")
    recipe = paced_recipe(task, tmp_path)
    fit(task, data, tmp_path / "whole", recipe=recipe)
    whole = last_checkpoint(tmp_path / "whole")
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    resumed_from = [run_until_killed(task, data, run_dir, recipe, step) for step in KILLS[task]]
    assert all(mid_epoch for _, mid_epoch in resumed_from), resumed_from  # mid-epoch, both times
    assert resumed_from[0][0] < resumed_from[1][0]
    done = fit(task, data, run_dir, "--ckpt_path", "last", recipe=recipe)
    assert "resuming the run in" in done.stderr
    assert len(list(run_dir.rglob("version_*"))) == 1  # every restart wrote into the same run folder
    resumed = last_checkpoint(run_dir)
    assert resumed["global_step"] == whole["global_step"]
    assert_same_weights(whole["state_dict"], resumed["state_dict"])
    assert validation_metrics(run_dir)[-1] == validation_metrics(tmp_path / "whole")[-1]
