"""The ``rnnzoo`` command: a LightningCLI for training, plus ``generate`` for sampling.

rnnzoo fit --config recipes/language_model/tiny_shakespeare-lstm.yaml
rnnzoo test --config ... --ckpt_path path/to/last.ckpt
rnnzoo generate --ckpt_path path/to/last.ckpt --prompt "ROMEO:"
rnnzoo classify --ckpt_path path/to/last.ckpt --text "a gripping, funny film"
rnnzoo export --ckpt_path path/to/best.ckpt --out my-model    (a safetensors artifact; see rnnzoo.hub)
rnnzoo generate --model tiny_shakespeare-lstm_small --prompt "ROMEO:"  (a bundled pretrained model, offline)
rnnzoo translate --ckpt_path path/to/last.ckpt --text "Ein Hund läuft im Schnee." --beam_size 5
rnnzoo tag --ckpt_path path/to/last.ckpt --text "The cat sat on the mat ."
rnnzoo caption --ckpt_path path/to/last.ckpt --condition Russian --num_samples 5 --temperature 0.8
rnnzoo caption --ckpt_path path/to/last.ckpt --image photo.ppm --beam_size 3
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
from rnnzoo.tasks import RNNTask, load_task


class RnnzooCLI(LightningCLI):
    """LightningCLI whose data module tells the model its vocabulary size.

    The link is applied at instantiation (Lightning issue 17275): the data
    module builds its tokenizer from the training split when asked for
    ``vocab_size``, before ``setup()``. It is an int for one-vocabulary tasks and
    ``{"source": ..., "target": ...}`` for translation, whatever the task's
    ``vocab_size`` argument takes. A tagging data module also gives the
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


def load_model(ckpt_path: str | None, model: str | None, device: str, method: str, purpose: str) -> RNNTask:
    """A task from a Lightning checkpoint (``ckpt_path``) or a pretrained ``model``, exactly one of them.

    Raises:
        ValueError: when both or neither are given, or the task has no ``method`` (it cannot ``purpose``).
    """
    if (ckpt_path is None) == (model is None):
        raise ValueError("give exactly one of --ckpt_path (a Lightning checkpoint) or --model (a pretrained model)")
    if ckpt_path is not None:
        task = load_task(ckpt_path, map_location=device)
    else:
        task = RNNTask.from_pretrained(model, map_location=device)
    if not hasattr(task, method):
        raise ValueError(f"{ckpt_path or model!r} holds a {type(task).__name__}, which does not {purpose}")
    return task


def generate(
    ckpt_path: str | None = None,
    model: str | None = None,
    prompt: str = "\n",
    max_new_tokens: int = 500,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    device: str = "cpu",
) -> str:
    """Sample text from a language model.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: or a pretrained model: a bundled name (``rnnzoo.list_models()``), an
            artifact folder or a HuggingFace hub repo id.
        prompt: text to continue.
        max_new_tokens: how many tokens to add.
        temperature: below 1 is more conservative, 0 is greedy.
        top_k: sample among the k most likely tokens only.
        seed: seed for reproducible samples.
        device: where to run (``cpu``, ``cuda``).
    """
    task = load_model(ckpt_path, model, device, "generate", "generate text")
    if hasattr(task, "generate_n_best"):
        raise ValueError(
            f"{ckpt_path or model!r} holds a {type(task).__name__}, which does not generate text from a prompt "
            "(use rnnzoo caption)"
        )
    return task.generate(prompt, max_new_tokens, temperature, top_k, seed)


def read_texts(text: str | list[str] | None, file: str | None, verb: str) -> list[str]:
    """The ``--text`` values, then the non-blank lines of ``--file``; at least one of them."""
    texts = [text] if isinstance(text, str) else list(text or [])
    if file is not None:
        with open(file, encoding="utf-8") as lines:
            texts += [line.rstrip("\n") for line in lines if line.strip()]
    if not texts:
        raise ValueError(f"nothing to {verb}: give --text (one or more) or --file")
    return texts


def classify(
    ckpt_path: str | None = None,
    model: str | None = None,
    text: str | list[str] | None = None,
    file: str | None = None,
    max_length: int | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Classify texts with a classifier; no dataset is needed.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: or a pretrained model (bundled name, artifact folder or hub repo id).
        text: a text to classify, or several (``--text+ "one" --text+ "two"``).
        file: a UTF-8 file with one text per line (blank lines are skipped).
        max_length: cut each text to this many tokens, as in training.
        device: where to run (``cpu``, ``cuda``).

    Returns:
        One ``{"text", "label", "probabilities"}`` dict per text.
    """
    texts = read_texts(text, file, "classify")
    task = load_model(ckpt_path, model, device, "classify", "classify text")
    return [{"text": t, **result} for t, result in zip(texts, task.classify(texts, max_length), strict=True)]


def export(
    ckpt_path: str,
    out: str,
    dataset: str | None = None,
    recipe: str | None = None,
    command: str | None = None,
    data_license: str | None = None,
    metrics: dict[str, float] | None = None,
) -> str:
    """Turn a Lightning checkpoint into a pretrained artifact folder (safetensors, tokenizer, model card).

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        out: the folder to write.
        dataset: the training data, for the model card.
        recipe: the recipe used, for the model card.
        command: the training command, for the model card.
        data_license: the licence of the training data, for the model card.
        metrics: test metrics measured, name -> value, for the model card.
    """
    card = {"dataset": dataset, "recipe": recipe, "command": command, "data_license": data_license}
    load_task(ckpt_path).save_pretrained(out, model_card_kwargs={**card, "metrics": metrics, "name": out})
    return f"wrote {out}: load it with RNNTask.from_pretrained({out!r}) or --model {out}"


def translate(
    ckpt_path: str | None = None,
    model: str | None = None,
    text: str | list[str] | None = None,
    file: str | None = None,
    beam_size: int = 5,
    n_best: int = 1,
    length_penalty: float | None = None,
    max_length: int | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Translate texts with a seq2seq checkpoint; no dataset is needed.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: or a pretrained model (bundled name, artifact folder or hub repo id).
        text: a source text (``--text+ TEXT`` adds one more).
        file: a UTF-8 file with one source text per line (blank lines are skipped).
        beam_size: beams per sentence (1: greedy).
        n_best: translations per text, best first (at most ``beam_size``).
        length_penalty: GNMT alpha (default: the model's).
        max_length: most target tokens (default: the model's).
        device: where to run (``cpu``, ``cuda``).

    Returns:
        One ``{"source", "translation", "score"}`` dict per text (plus ``"n_best"`` when ``n_best > 1``).
    """
    texts = read_texts(text, file, "translate")
    task = load_model(ckpt_path, model, device, "translate_n_best", "translate text")
    results = task.translate_n_best(texts, beam_size, n_best, length_penalty, max_length)
    output = []
    for source, hypotheses in zip(texts, results, strict=True):
        best, score = hypotheses[0]
        entry: dict[str, Any] = {"source": source, "translation": best, "score": None if score != score else score}
        if n_best > 1:
            entry["n_best"] = [{"translation": t, "score": s} for t, s in hypotheses]
        output.append(entry)
    return output


def tag(
    ckpt_path: str | None = None,
    model: str | None = None,
    text: list[str] | str | None = None,
    file: str | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Tag sentences with a tagger checkpoint; no dataset is needed.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: or a pretrained model (bundled name, artifact folder or hub repo id).
        text: a sentence to tag, words separated by spaces (``--text+ ...`` once per sentence for several).
        file: a UTF-8 file with one sentence per line (blank lines are skipped).
        device: where to run (``cpu``, ``cuda``).

    Returns:
        One ``{"tokens", "tags"}`` dict per sentence.
    """
    sentences = read_texts(text, file, "tag")
    task = load_model(ckpt_path, model, device, "tag", "tag text")
    return task.tag(sentences)


def caption(
    ckpt_path: str | None = None,
    model: str | None = None,
    condition: str | list[str] | None = None,
    image: str | list[str] | None = None,
    num_samples: int = 1,
    beam_size: int = 1,
    n_best: int = 1,
    temperature: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    max_length: int | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Generate from a captioning checkpoint (a category or an image in, a sequence out); no dataset is needed.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: or a pretrained model (bundled name, artifact folder or hub repo id).
        condition: a category such as ``Russian`` (``--condition+ NAME`` adds one more).
        image: an image file (``.ppm``, ``.pt``, ``.npy``; PNG/JPEG with Pillow), or several.
        num_samples: outputs per condition (with a ``temperature``, different samples).
        beam_size: beams per condition (1: greedy, or sampling with a temperature).
        n_best: outputs per condition from the beam, best first (at most ``beam_size``).
        temperature: sample with this temperature instead of searching.
        top_k: with a temperature, sample among the k most likely tokens.
        seed: seed for reproducible samples.
        max_length: most tokens per output (default: the model's).
        device: where to run (``cpu``, ``cuda``).

    Returns:
        One ``{"condition", "text"}`` dict per output (plus ``"score"`` with beam search).
    """
    conditions = [condition] if isinstance(condition, str) else list(condition or [])
    conditions += [image] if isinstance(image, str) else list(image or [])
    if not conditions or (condition and image):
        raise ValueError("give --condition (a category) or --image (an image file), one or more, not both")
    if num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples}")
    task = load_model(ckpt_path, model, device, "generate_n_best", "caption")
    repeated = [c for c in conditions for _ in range(num_samples)]
    results = task.generate_n_best(repeated, beam_size, n_best, temperature, top_k, seed, max_length)
    output = []
    for source, hypotheses in zip(repeated, results, strict=True):
        for text, score in hypotheses:
            entry: dict[str, Any] = {"condition": source, "text": text}
            if score == score:  # beam search scores its outputs; greedy and sampling give NaN
                entry["score"] = score
            output.append(entry)
    return output


def _print_json_lines(results: list[dict[str, Any]]) -> None:
    for result in results:
        print(json.dumps(result, ensure_ascii=False))


COMMANDS: dict[str, tuple[Callable[..., Any], Callable[[Any], None]]] = {
    "generate": (generate, print),
    "classify": (classify, _print_json_lines),
    "export": (export, print),
    "translate": (translate, _print_json_lines),
    "tag": (tag, _print_json_lines),
    "caption": (caption, _print_json_lines),
}
"""Commands beside LightningCLI's: a function from a checkpoint, and how to print its result."""


def _function_command(name: str, args: list[str]) -> None:
    function, show = COMMANDS[name]
    parser = ArgumentParser(prog=f"rnnzoo {name}", description=function.__doc__.splitlines()[0])
    parser.add_function_arguments(function)
    config = parser.parse_args(args)
    try:
        show(function(**config.as_dict()))
    except (FileNotFoundError, ValueError, RuntimeError, KeyError, ConnectionError) as error:
        parser.error(str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error))


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
                "(classifiers), rnnzoo translate --help (seq2seq), rnnzoo tag --help (taggers), "
                "rnnzoo caption --help (captioners), rnnzoo export --help (to a pretrained artifact)"
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
