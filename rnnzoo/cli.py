"""The ``rnnzoo`` command: a LightningCLI for training, plus ``generate`` for sampling.

rnnzoo fit --config recipes/language_model/tiny_shakespeare-lstm.yaml
rnnzoo test --config ... --ckpt_path path/to/last.ckpt
rnnzoo generate --ckpt_path path/to/last.ckpt --prompt "ROMEO:"
"""

from __future__ import annotations

import os
import sys
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
    ``vocab_size``, before ``setup()``.
    """

    def add_arguments_to_parser(self, parser: Any) -> None:
        """Link ``data.vocab_size`` into the model."""
        parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")

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


def _generate_command(args: list[str]) -> None:
    parser = ArgumentParser(prog="rnnzoo generate", description="Sample text from a language-model checkpoint.")
    parser.add_function_arguments(generate)
    config = parser.parse_args(args)
    try:
        print(generate(**config.as_dict()))
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        parser.error(str(error))


USER_ERRORS = (ValueError, KeyError, FileNotFoundError, ConnectionError)
"""Errors that mean "fix your input": shown as one line unless RNNZOO_DEBUG=1 asks for the traceback."""


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``rnnzoo`` command."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] == "generate":
        _generate_command(argv[1:])
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
                "To sample from a language-model checkpoint: rnnzoo generate --help"
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
