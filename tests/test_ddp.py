"""Two processes (DDP over gloo on the CPU) train every task, and validate exactly as one process does.

Evaluation under DDP must neither drop nor repeat an example (Lightning's own evaluation sampler pads
the ranks' shares with repeats; the language model shares out the rows of one stream layout), and the
metrics are reduced across the ranks: the figures equal a one-process run on the same weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, quiet_trainer

TESTS = Path(__file__).parent
SCRIPT = """
import json, os, sys
from pathlib import Path
sys.path[:0] = [{tests!r}, {tasks!r}]
import torch
from lightning import Trainer, seed_everything
from test_contract import CASES

task, folder, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
seed_everything(0)
case = CASES[task](folder / ("rank" + os.environ.get("LOCAL_RANK", "0")))  # each rank writes its own copy
model = case.model(case.data)
trainer = Trainer(
    accelerator="cpu", devices=2, strategy="ddp", max_steps=4, logger=False, enable_checkpointing=False,
    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
)
trainer.fit(model, case.data)
(metrics,) = trainer.validate(model, case.data, verbose=False)
if trainer.global_rank == 0:
    torch.save(model.state_dict(), out / "weights.pt")
    (out / "metrics.json").write_text(json.dumps(metrics))
"""


def run_on_two_processes(task: str, tmp_path: Path) -> tuple[dict, dict]:
    script = tmp_path / "two_processes.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), tasks=str(TESTS / "tasks")))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["HF_DATASETS_OFFLINE"] = "1"
    command = [sys.executable, str(script), task, str(tmp_path / "data"), str(tmp_path)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    weights = torch.load(tmp_path / "weights.pt", weights_only=True)
    return weights, json.loads((tmp_path / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    "task", ["language_model", "classifier", "seq2seq", "tagger", "captioner", "sequence_predictor"]
)
def test_two_processes_train_and_validate_like_one(task, tmp_path):
    sys.path.insert(0, str(TESTS / "tasks"))
    from test_contract import CASES

    weights, two = run_on_two_processes(task, tmp_path)
    case = CASES[task](tmp_path / "one")
    model = case.model(case.data)
    model.load_state_dict(weights)
    (one,) = quiet_trainer(tmp_path / "one_run").validate(model, case.data, verbose=False)
    assert one.keys() == two.keys() and "val_loss" in one
    for name, value in one.items():
        assert two[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


@pytest.mark.slow
@pytest.mark.parametrize("task", ["language_model", "classifier", "language_model_streaming", "classifier_streaming"])
def test_the_command_line_runs_a_recipe_on_two_processes(task, tmp_path):
    """Streamed, the processes' parts make unequal numbers of batches: every process must stop with the first."""
    from test_reproducibility import DATA, fit, last_checkpoint, validation_metrics

    data = DATA[task](tmp_path / "data")
    fit(task, data, tmp_path / "run", "--trainer.strategy", "ddp", "--trainer.devices", "2")
    assert last_checkpoint(tmp_path / "run")["global_step"] > 0
    assert validation_metrics(tmp_path / "run")  # validated, and logged once (by rank 0)


@pytest.mark.slow
def test_a_streamed_run_on_two_processes_saves_and_resumes_both_positions(tmp_path):
    from test_reproducibility import DATA, fit, last_checkpoint

    data = DATA["classifier_streaming"](tmp_path / "data")
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2"]
    fit("classifier_streaming", data, tmp_path / "run", *ddp, "--trainer.max_epochs", "1")
    first = last_checkpoint(tmp_path / "run")
    (state,) = first["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert len(state["ranks"]) == 2 and state["ranks"][0]["pass"] == state["ranks"][1]["pass"] == 0
    fit("classifier_streaming", data, tmp_path / "run", *ddp, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert last_checkpoint(tmp_path / "run")["global_step"] == 2 * first["global_step"]
