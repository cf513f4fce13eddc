"""The pretrained-model artifact: a folder that holds everything needed to use a model.

    config.json        task class, hyper-parameters, labels, rnnzoo format, sha256 of the files below
    model.safetensors  the weights (never a pickle)
    tokenizer.json     the tokenizer built from the training split
    README.md          the model card: task, data, recipe, command, measured metrics, licence

:meth:`rnnzoo.RNNTask.save_pretrained` writes one (through ``huggingface_hub``'s
``ModelHubMixin``, which also gives ``push_to_hub``); :func:`read_artifact` loads one and
checks every file it loads against the sha256 recorded in ``config.json`` (a file it does not list is refused).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import load_model, save_model

from rnnzoo._version import __version__
from rnnzoo.data_state import DataState
from rnnzoo.serialization import FORMAT, check_format, class_path, import_class, read_json, write_json
from rnnzoo.tokenizers import Tokenizer, tokenizer_from_dict

if TYPE_CHECKING:
    from rnnzoo.tasks.base import RNNTask

ARTIFACT_FORMAT = FORMAT
"""Deprecated alias of :data:`rnnzoo.serialization.FORMAT` (one version for checkpoints and artifacts)."""

CONFIG, WEIGHTS, TOKENIZER, CARD = "config.json", "model.safetensors", "tokenizer.json", "README.md"


def sha256_file(path: str | Path) -> str:
    """Full sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """Raise naming the file when its sha256 is not ``expected``."""
    if not path.is_file():
        raise FileNotFoundError(f"pretrained file {path.name!r} is missing from {str(path.parent)!r}")
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(
            f"sha256 mismatch for {path.name!r} in {str(path.parent)!r}: expected {expected}, got {actual}. "
            "The file is corrupt or was changed; download or export it again."
        )


def jsonable_hparams(task: RNNTask) -> dict[str, Any]:
    """The task's hyper-parameters that rebuild it (injected optimizers and schedulers are not saved)."""
    hparams = dict(task.hparams)
    json.dumps(hparams)  # fails loudly on a value that cannot be stored
    return hparams


def write_artifact(task: RNNTask, directory: str | Path) -> None:
    """Write weights, tokenizer and ``config.json`` (with their sha256) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = [WEIGHTS]
    save_model(task, str(directory / WEIGHTS), metadata={"format": "pt"})
    data_state = task.data_state.to_dict()
    tokenizer = data_state.pop("tokenizer", None)
    if tokenizer is not None:
        write_json(directory / TOKENIZER, tokenizer, indent=None)
        files.append(TOKENIZER)
    config = {
        "rnnzoo_format": FORMAT,
        "rnnzoo_version": __version__,
        "task": class_path(type(task)),
        "hparams": jsonable_hparams(task),
        "data_state": data_state,
        "sha256": {name: sha256_file(directory / name) for name in files},
    }
    write_json(directory / CONFIG, config)


def read_config(directory: str | Path) -> dict[str, Any]:
    """``config.json`` of an artifact, checked to be one this rnnzoo can read."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{str(directory)!r} is not an rnnzoo artifact: it has no {CONFIG}")
    config = read_json(path)
    if "rnnzoo_format" not in config:
        raise ValueError(f"{str(path)!r} is not an rnnzoo artifact config (no rnnzoo_format)")
    check_format(config["rnnzoo_format"], repr(str(directory)), config.get("rnnzoo_version"))
    return config


def check_files(directory: Path, config: dict[str, Any]) -> None:
    """Check every file the artifact loads against the sha256 ``config.json`` lists for it.

    Raises:
        ValueError: when ``config.json`` lists no sha256, or not that of a file there that
            would be loaded (the weights, the tokenizer), or a file differs from its sha256.
        FileNotFoundError: for a listed file that is missing.
    """
    digests = config.get("sha256")
    if not isinstance(digests, dict):
        raise ValueError(
            f"{str(directory / CONFIG)!r} lists no sha256 of the artifact's files, so they cannot be checked: "
            "export the artifact again (rnnzoo export)"
        )
    for name in (WEIGHTS, TOKENIZER):
        if name not in digests and (name == WEIGHTS or (directory / name).is_file()):
            raise ValueError(
                f"{str(directory / CONFIG)!r} lists no sha256 of {name!r}, which would load unchecked: "
                "export the artifact again (rnnzoo export)"
            )
    for name, digest in digests.items():
        check_sha256(directory / name, digest)


def read_artifact(directory: str | Path, expected: type[RNNTask] | None = None, map_location: str = "cpu") -> RNNTask:
    """Build the task stored in ``directory``, after checking the sha256 of its files.

    Args:
        directory: an artifact folder.
        expected: raise unless the stored task is this class, a subclass or a parent (then
            ``expected`` is built: a subclass of a stored task loads its weights).
        map_location: device of the loaded weights.
    """
    directory = Path(directory)
    config = read_config(directory)
    check_files(directory, config)
    cls = import_class(config["task"])
    if expected is not None and issubclass(expected, cls):
        cls = expected  # a subclass of the stored task (its own hooks) loads the stored weights
    if expected is not None and not issubclass(cls, expected):
        raise ValueError(
            f"{str(directory)!r} holds a {cls.__name__}, not a {expected.__name__}; load it with "
            f"{cls.__name__}.from_pretrained, or move parts of it with rnnzoo.transfer_weights"
        )
    task = cls(**config["hparams"])
    missing, unexpected = load_model(task, str(directory / WEIGHTS), strict=False, device=map_location)
    if missing or unexpected:
        raise ValueError(
            f"the weights in {str(directory / WEIGHTS)!r} do not fit a {cls.__name__} built from its config: "
            f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    state = dict(config.get("data_state", {}))
    if (directory / TOKENIZER).is_file():
        state["tokenizer"] = read_json(directory / TOKENIZER)
    task.data_state = DataState.from_dict(state)
    task.check_data_state()
    return task.to(map_location).eval()


def read_tokenizer(directory: str | Path) -> Tokenizer:
    """Only the tokenizer of an artifact (checked against its sha256)."""
    directory = Path(directory)
    config = read_config(directory)
    if not (directory / TOKENIZER).is_file():
        raise ValueError(f"the artifact {str(directory)!r} has no tokenizer")
    check_files(directory, config)
    return tokenizer_from_dict(read_json(directory / TOKENIZER))


def resolve(source: str | os.PathLike, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """The local folder of ``source``: a zoo name (hashes checked), a folder, or a HuggingFace hub repo id.

    Raises:
        ConnectionError: for a hub repo id that cannot be downloaded (e.g. offline and not cached).
    """
    from rnnzoo.hub.zoo import ZOO, verified_folder

    source = str(source)
    if source in ZOO:
        return verified_folder(source)
    if os.path.isdir(source):
        return Path(source)
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise FileNotFoundError(
            f"{source!r} is neither a pretrained model name (see rnnzoo.list_models()), nor an artifact folder, "
            "nor a HuggingFace hub repo id (owner/name)"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision, cache_dir=cache_dir))
    except Exception as error:  # the hub raises many kinds; all mean the same to the user
        raise ConnectionError(
            f"could not download {source!r} from the HuggingFace hub ({type(error).__name__}: {error}). "
            "Offline, only the bundled models (rnnzoo.list_models()) and cached repos load."
        ) from error
