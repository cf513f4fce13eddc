"""What checkpoints and pretrained artifacts share: one format version, one class importer, UTF-8 JSON, safe reads."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from rnnzoo._version import __version__
from rnnzoo.errors import clip

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
        ValueError: naming the module to import, when the module or the class cannot be found.
    """
    module, _, name = path.rpartition(".")
    try:
        found = importlib.import_module(module)
    except ImportError as error:
        raise ValueError(
            f"cannot import the task class {path!r}: its module {module!r} is not importable here ({error}). "
            f"Install the package that defines it, or put the folder holding {module.replace('.', '/')}.py on "
            "PYTHONPATH (a class defined in a script is named after __main__: move it into a module)"
        ) from None
    except ValueError as error:  # an empty or relative module name
        raise ValueError(f"cannot import the task class {path!r} ({error}); name it as module.Class") from None
    value = getattr(found, name, None)
    if value is None:
        hint = " (it was defined in the script that trained it: move it into a module)" if module == "__main__" else ""
        raise ValueError(
            f"cannot import the task class {path!r}: module {module!r} has no {name!r}{hint}; import the "
            "version of that module which defines it"
        )
    return value


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate on its own (text read with ``errors="surrogateescape"``): not encodable as UTF-8."""


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write ``value`` as UTF-8 JSON (non-ASCII kept as is), whatever the locale.

    A lone surrogate in a string is written as its JSON escape (backslash, ``udXXX``), which JSON reads back as
    the same character: a vocabulary holding one saves and loads unchanged. (A high surrogate
    followed by a low one reads back as the one character the pair encodes: JSON cannot tell them apart.)
    """
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    text = LONE_SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    Path(path).write_text(text + "\n" if indent is not None else text, encoding="utf-8")


def read_json(path: str | Path) -> Any:
    """Read a UTF-8 JSON file, whatever the locale."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


ZIP_MAGIC = b"PK\x03\x04"
"""How every file ``torch.save`` writes (and so every ``.ckpt``) begins."""


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A Lightning checkpoint, read as plain data only (``weights_only=True``: unpickling runs no code).

    What rnnzoo stores in checkpoints (tensors, numbers, strings, lists and dicts of them) is all
    ``weights_only`` reads; anything else is refused rather than unpickled.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        ValueError: for a folder, an empty, truncated or damaged file, a file that is not a
            checkpoint, or one holding objects other than plain data.
    """
    name = str(path)
    if os.path.isdir(name):
        raise ValueError(f"{name!r} is a folder, not a checkpoint file (a pretrained model folder goes to --model)")
    if not os.path.isfile(name):
        raise FileNotFoundError(f"no checkpoint at {name!r}")
    with open(name, "rb") as file:
        head = file.read(len(ZIP_MAGIC))
    if not head:
        raise ValueError(f"checkpoint {name!r} is empty (0 bytes): the run writing it was stopped; use another one")
    if head != ZIP_MAGIC:
        raise ValueError(
            f"{name!r} is not a checkpoint: a .ckpt written by rnnzoo fit is a zip archive, this file begins {head!r}"
        )
    if not zipfile.is_zipfile(name):
        raise ValueError(f"checkpoint {name!r} is truncated or damaged (its zip index is missing); use another one")
    try:
        checkpoint = torch.load(name, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error)) or re.search(r"global (\S+)", str(error))
        what = f" ({found.group(1)})" if found else ""
        raise ValueError(
            f"{name!r} holds objects other than tensors and plain data{what}, which rnnzoo does not unpickle: "
            "unpickling them could run any code. Load only checkpoints you trust; to keep one you wrote, re-save "
            "its tensors and plain data"
        ) from None
    except (EOFError, OSError, RuntimeError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"checkpoint {name!r} is damaged ({type(error).__name__}: {clip(str(error), 120)})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{name!r} is not a Lightning checkpoint (it holds no state_dict)")
    return checkpoint
