"""What checkpoints and pretrained artifacts share: one format version, one class importer, UTF-8 JSON."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from rnnzoo._version import __version__

FORMAT = 2
"""What rnnzoo stores beside the weights, in checkpoints and artifacts alike; bumped on incompatible changes.
Format 2 stores the data state as one :class:`~rnnzoo.data_state.DataState` dict; format 1 (rnnzoo 0.x
before the task layer) kept its fields flat and is still read."""


def check_format(found: int | None, where: str, written_by: str | None = None) -> None:
    """Refuse what a newer rnnzoo wrote (``found`` > :data:`FORMAT`), naming ``where`` and the upgrade."""
    if found is not None and found > FORMAT:
        raise ValueError(
            f"{where} has rnnzoo format {found} (written by rnnzoo {written_by}); this rnnzoo ({__version__}) "
            f"reads format {FORMAT} or older: upgrade rnnzoo"
        )


def class_path(cls: type) -> str:
    """``module.Class``: how a task class is named in a checkpoint or an artifact."""
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(path: str) -> type:
    """The class named by :func:`class_path` (importing its module, e.g. a user's own task).

    Raises:
        ValueError: when the module or the class cannot be found.
    """
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(
            f"cannot import the task class {path!r} ({error}); install or import the package that defines it"
        ) from None


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write ``value`` as UTF-8 JSON (non-ASCII kept as is), whatever the locale."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    Path(path).write_text(text + "\n" if indent is not None else text, encoding="utf-8")


def read_json(path: str | Path) -> Any:
    """Read a UTF-8 JSON file, whatever the locale."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
