"""The cell registry: a backbone chosen by name, from Python or from a YAML recipe."""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

CellClass = TypeVar("CellClass", bound=type[nn.Module])

_CELLS: dict[str, type[nn.Module]] = {}


def register_cell(name: str) -> Callable[[CellClass], CellClass]:
    """Class decorator that makes a backbone available by ``name`` everywhere a cell is chosen.

    The class must follow the backbone contract (subclass
    :class:`~rnnzoo.cells.RecurrentBackbone` and implement ``make_layer``, or
    provide ``forward``, ``step``, ``initial_state`` and ``output_size`` yourself)
    and take ``(input_size, hidden_size, num_layers=..., dropout=..., bidirectional=...)``.

    Example:
        >>> @register_cell("my_lstm")  # doctest: +SKIP
        ... class MyLSTM(RecurrentBackbone): ...
    """

    def decorator(cls: CellClass) -> CellClass:
        existing = _CELLS.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"cell name {name!r} is already registered to {existing.__qualname__}")
        _CELLS[name] = cls
        return cls

    return decorator


def list_cells(pattern: str = "*") -> list[str]:
    """Names of the registered cells that match a shell-style ``pattern``, sorted."""
    return sorted(name for name in _CELLS if fnmatch.fnmatchcase(name, pattern))


def get_cell_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``.

    Raises:
        ValueError: for an unknown name, listing the registered ones.
    """
    if name not in _CELLS:
        raise ValueError(
            f"unknown cell {name!r}; registered cells: {', '.join(list_cells())}. "
            "Register your own with @rnnzoo.register_cell('name') and import its module before use."
        )
    return _CELLS[name]


def build_cell(name: str, input_size: int, hidden_size: int, **options: Any) -> nn.Module:
    """Build the backbone registered as ``name``.

    Args:
        name: a name from :func:`list_cells`.
        input_size: features of each input step.
        hidden_size: features of the hidden state of each direction.
        **options: ``num_layers``, ``dropout``, ``bidirectional`` and the cell's own
            options (e.g. ``nonlinearity`` for ``rnn``).

    Raises:
        ValueError: for an unknown name or an option the cell does not take.
    """
    cls = get_cell_class(name)
    try:
        inspect.signature(cls).bind(input_size, hidden_size, **options)
    except TypeError as error:
        raise ValueError(f"cell {name!r} ({cls.__qualname__}) does not accept these options: {error}") from None
    return cls(input_size, hidden_size, **options)
