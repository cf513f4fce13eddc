"""The ``rnnzoo`` command: a LightningCLI for training, plus ``generate`` for sampling.

rnnzoo fit --config recipes/language_model/tiny_shakespeare-lstm.yaml
rnnzoo test --config ... --ckpt_path path/to/last.ckpt
rnnzoo generate --ckpt_path path/to/last.ckpt --prompt "ROMEO:"
rnnzoo classify --ckpt_path path/to/last.ckpt --text "a gripping, funny film"
rnnzoo tag --ckpt_path path/to/last.ckpt --text "The cat sat on the mat ."
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from jsonargparse import ArgumentParser
from lightning import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from rnnzoo.cells import get_cell_class
from rnnzoo.tasks import load_task


class RnnzooCLI(LightningCLI):
    """LightningCLI whose data module tells the model its vocabulary size.

    The link is applied at instantiation (Lightning issue 17275): the data
    module builds its tokenizer from the training split when asked for
    ``vocab_size``, before ``setup()``. A tagging data module also gives the
    tagger its ``char_vocab_size`` and ``frame_size`` (links whose source or
    target a class lacks are skipped). A classifier's ``num_classes`` and a
    tagger's ``num_tags`` are written in the recipe instead, and checked against
    the data at ``setup()``.
    """

    def add_arguments_to_parser(self, parser: Any) -> None:
        """Link the data module's input sizes into the model."""
        for size in ("vocab_size", "char_vocab_size", "frame_size"):
            parser.link_arguments(f"data.{size}", f"model.init_args.{size}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Check the cell name first, so a typo is one clear error rather than a union-type report."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        cell = config.get("model", {}).get("init_args", {}).get("cell")
        if isinstance(cell, str):
            get_cell_class(cell)


def generate(
    ckpt_path: str,
    prompt: str = "\n",
    max_new_tokens: int = 500,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    device: str = "cpu",
) -> str:
    """Sample text from a language-model checkpoint.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        prompt: text to continue.
        max_new_tokens: how many tokens to add.
        temperature: below 1 is more conservative, 0 is greedy.
        top_k: sample among the k most likely tokens only.
        seed: seed for reproducible samples.
        device: where to run (``cpu``, ``cuda``).
    """
    model = load_task(ckpt_path, map_location=device)
    if not hasattr(model, "generate"):
        raise ValueError(f"{ckpt_path!r} holds a {type(model).__name__}, which does not generate text")
    return model.generate(prompt, max_new_tokens, temperature, top_k, seed)


def classify(
    ckpt_path: str,
    text: list[str] | None = None,
    file: str | None = None,
    max_length: int | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Classify texts with a classifier checkpoint; no dataset is needed.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        text: texts to classify (repeat ``--text`` for several).
        file: a UTF-8 file with one text per line (blank lines are skipped).
        max_length: cut each text to this many tokens, as in training.
        device: where to run (``cpu``, ``cuda``).

    Returns:
        One ``{"text", "label", "probabilities"}`` dict per text.
    """
    texts = list(text or [])
    if file is not None:
        with open(file, encoding="utf-8") as lines:
            texts += [line.rstrip("\n") for line in lines if line.strip()]
    if not texts:
        raise ValueError("nothing to classify: give --text (one or more) or --file")
    model = load_task(ckpt_path, map_location=device)
    if not hasattr(model, "classify"):
        raise ValueError(f"{ckpt_path!r} holds a {type(model).__name__}, which does not classify text")
    return [{"text": t, **result} for t, result in zip(texts, model.classify(texts, max_length), strict=True)]


def tag(
    ckpt_path: str,
    text: list[str] | str | None = None,
    file: str | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Tag sentences with a tagger checkpoint; no dataset is needed.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        text: a sentence to tag, words separated by spaces (``--text+ ...`` once per sentence for several).
        file: a UTF-8 file with one sentence per line (blank lines are skipped).
        device: where to run (``cpu``, ``cuda``).

    Returns:
        One ``{"tokens", "tags"}`` dict per sentence.
    """
    sentences = [text] if isinstance(text, str) else list(text or [])
    if file is not None:
        with open(file, encoding="utf-8") as lines:
            sentences += [line.rstrip("\n") for line in lines if line.strip()]
    if not sentences:
        raise ValueError("nothing to tag: give --text (one or more) or --file")
    model = load_task(ckpt_path, map_location=device)
    if not hasattr(model, "tag"):
        raise ValueError(f"{ckpt_path!r} holds a {type(model).__name__}, which does not tag text")
    return model.tag(sentences)


def _print_json_lines(results: list[dict[str, Any]]) -> None:
    for result in results:
        print(json.dumps(result, ensure_ascii=False))


COMMANDS: dict[str, tuple[Callable[..., Any], Callable[[Any], None]]] = {
    "generate": (generate, print),
    "classify": (classify, _print_json_lines),
    "tag": (tag, _print_json_lines),
}
"""Commands beside LightningCLI's: a function from a checkpoint, and how to print its result."""


def _function_command(name: str, args: list[str]) -> None:
    function, show = COMMANDS[name]
    parser = ArgumentParser(prog=f"rnnzoo {name}", description=function.__doc__.splitlines()[0])
    parser.add_function_arguments(function)
    config = parser.parse_args(args)
    try:
        show(function(**config.as_dict()))
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        parser.error(str(error))


USER_ERRORS = (ValueError, KeyError, FileNotFoundError, ConnectionError)
"""Errors that mean "fix your input": shown as one line unless RNNZOO_DEBUG=1 asks for the traceback."""


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``rnnzoo`` command."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] in COMMANDS:
        _function_command(argv[0], argv[1:])
        return
    try:
        RnnzooCLI(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={
                "description": "Train and evaluate rnnzoo models from YAML recipes. "
                "To use a checkpoint: rnnzoo generate --help (language models), rnnzoo classify --help "
                "(classifiers), rnnzoo tag --help (taggers)"
            },
        )
    except USER_ERRORS as error:
        if os.environ.get("RNNZOO_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"rnnzoo: error: {message}\n(set RNNZOO_DEBUG=1 to see the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
