"""The registry of pretrained models bundled with rnnzoo: list them, load them in one line, trust them.

Every entry records torchvision-style metadata (task, dataset, recipe, metrics measured
here, parameter count) and the size and full sha256 of each of its files; every load
checks them all, so a corrupt or tampered file is an error that names it.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnzoo.hub.artifact import check_sha256, read_artifact

if TYPE_CHECKING:
    from rnnzoo.tasks.base import RNNTask

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
INDEX = WEIGHTS_DIR / "zoo.json"


@dataclass(frozen=True)
class PretrainedModel:
    """One bundled model and what is known about it.

    Attributes:
        name: the name to load it by.
        task: the task class (``Classifier``, ``LanguageModel`` ...).
        dataset: the hub id (or local folder) of the training data; ``synthetic`` or
            ``generated:...`` for data the package makes.
        recipe: the recipe it was trained with.
        command: the command that trained it.
        metrics: test metrics measured on this machine, by name.
        num_params: number of parameters.
        description: one line on what it is.
        license: licence of the training data.
        files: file name -> ``{"size": bytes, "sha256": hex}``.
        data_options: the recipe's data options changed to measure the metrics on
            the local copy of the data (e.g. which split is the test split).
    """

    name: str
    task: str
    dataset: str
    recipe: str
    command: str
    metrics: dict[str, float]
    num_params: int
    description: str
    license: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """Where its files are installed."""
        return WEIGHTS_DIR / self.name

    @property
    def size_bytes(self) -> int:
        """Bytes of all its files."""
        return sum(entry["size"] for entry in self.files.values())


def _load_index() -> dict[str, PretrainedModel]:
    if not INDEX.is_file():
        return {}
    return {entry["name"]: PretrainedModel(**entry) for entry in json.loads(INDEX.read_text(encoding="utf-8"))}


ZOO: dict[str, PretrainedModel] = _load_index()
"""The bundled models by name."""


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Names of the bundled pretrained models matching a glob ``pattern`` (e.g. ``"*sst2*"``), sorted.

    Args:
        pattern: a glob over the names.
        task: only the models of this task class (``"Tagger"``, ``"Seq2Seq"`` ...), as
            :func:`models_by_task` groups them.
    """
    return sorted(name for name, info in ZOO.items() if fnmatch.fnmatch(name, pattern) and task in (None, info.task))


def models_by_task() -> dict[str, list[str]]:
    """The bundled models' names grouped by task class, tasks in alphabetical order."""
    tasks = sorted({info.task for info in ZOO.values()})
    return {task: list_models(task=task) for task in tasks}


def get_model_info(name: str) -> PretrainedModel:
    """The metadata of a bundled model."""
    if name not in ZOO:
        raise KeyError(f"no pretrained model {name!r}; available: {', '.join(list_models()) or 'none'}")
    return ZOO[name]


def verified_folder(name: str) -> Path:
    """The folder of a bundled model, after checking the sha256 of every one of its files."""
    info = get_model_info(name)
    for file, entry in info.files.items():
        check_sha256(info.folder / file, entry["sha256"])
    return info.folder


def load_pretrained(name: str, map_location: str = "cpu") -> RNNTask:
    """Load a bundled model by name, offline, every file's sha256 checked: ``load_pretrained("sst2-gru-small")``."""
    return read_artifact(verified_folder(name), map_location=map_location)
