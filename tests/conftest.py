"""Shared fixtures: offline HuggingFace, the real datasets in ../shared/data, tiny text corpora."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from lightning import Trainer

# A stray hub call must fail fast instead of hanging.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
SHARED_DATA = REPO.parent / "shared" / "data"

# Recipes name hub ids; tests read the local copies of the same data (None: no local copy exists).
LOCAL_COPIES = {
    "karpathy/tiny_shakespeare": "tiny_shakespeare",
    "cornell-movie-review-data/rotten_tomatoes": "rotten_tomatoes",
    "stanfordnlp/sst2": "sst2",
    "stanfordnlp/imdb": None,
    "bentrevett/multi30k": "multi30k",
    "universal-dependencies/universal_dependencies": "ud_en_ewt",
    "leondz/wnut_17": "wnut17",
    "../shared/data/names": "names",
    "../shared/data/gesture_phase": "gesture_phase",
    "ptb-text-only/ptb_text_only": "ptb",
    "jxie/flickr8k": None,
    "ylecun/mnist": "mnist_t10k",
}


def shared_dataset(folder: str) -> Path:
    """The local copy of a real dataset, or skip the test saying why."""
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"real dataset {folder!r} not found at {path} (the shared data folder is absent)")
    return path


TINY_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    "All:\nResolved. resolved.\n"
) * 8
TINY_TEXT = TINY_TEXT.rstrip("\n")  # a text file's last newline is not a row of its own


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """A folder dataset with train/validation/test text files, one line a row."""
    folder = tmp_path / "tiny_corpus"
    folder.mkdir()
    lines = TINY_TEXT.split("\n")
    third = len(lines) // 3
    (folder / "train.txt").write_text("\n".join(lines), encoding="utf-8")
    (folder / "validation.txt").write_text("\n".join(lines[:third]), encoding="utf-8")
    (folder / "test.txt").write_text("\n".join(lines[third : 2 * third]), encoding="utf-8")
    return folder


def quiet_trainer(tmp_path: Path, **kwargs) -> Trainer:
    """A CPU Trainer without logger, progress bar, summary, checkpoints or sanity validation."""
    options = dict(
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    return Trainer(accelerator="cpu", devices=1, **{**options, **kwargs})


def write_jsonl(folder: Path, splits: dict[str, list[dict]]) -> Path:
    """A folder dataset: one ``<split>.jsonl`` file of rows per split."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
    return folder


def write_vectors_file(path: Path, vectors: dict[str, list[float]]) -> Path:
    """A GloVe-style text file: one word then its numbers per line (give values exact in float32, e.g. k / 8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join([word, *(repr(float(value)) for value in row)]) for word, row in vectors.items()]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def shared_file(relative: str) -> Path:
    """A file a recipe names under ``../shared/data/`` (relative to the repository), or skip saying why."""
    path = REPO.parent / relative.removeprefix("../")
    if not path.is_file():
        pytest.skip(f"{relative} not found at {path} (the shared data folder or that file is absent)")
    return path
