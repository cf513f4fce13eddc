"""The ``rnnzoo`` command: a LightningCLI for training, and one inference command per task over ``predict``.

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
rnnzoo serve --model sst2-gru_small --port 8000            (HTTP: POST /predict, GET /health; needs rnnzoo[serve])
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser
from lightning import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from rnnzoo.cells import get_cell_class
from rnnzoo.errors import clip, preview
from rnnzoo.serialization import import_class, read_checkpoint
from rnnzoo.tasks import Captioner, Classifier, LanguageModel, RNNTask, Seq2Seq, Tagger, load_task

USER_ERRORS = (ValueError, KeyError, FileNotFoundError, ConnectionError, RuntimeError)
"""Errors that mean "fix your input": one line, for training and inference alike, unless RNNZOO_DEBUG=1."""

CELL_OPTIONS = ("cell", "encoder_cell", "decoder_cell")
"""Model options that name a registered cell, checked before anything is built."""


class RnnzooCLI(LightningCLI):
    """LightningCLI whose data module tells the model its vocabulary size.

    The link is applied at instantiation (Lightning issue 17275): the data
    module builds its tokenizer from the training split when asked for
    ``vocab_size``, before ``setup()``. It is an int for one-vocabulary tasks and
    ``{"source": ..., "target": ...}`` for translation, whatever the task's
    ``vocab_size`` argument takes. A tagging data module also gives the
    tagger its ``char_vocab_size`` and ``frame_size``, a captioning data module of feature
    vectors the captioner its ``feature_size`` (links whose source or
    target a class lacks are skipped). A classifier's ``num_classes`` and a
    tagger's ``num_tags`` are written in the recipe instead, and checked against
    the data at ``setup()``.
    """

    def add_arguments_to_parser(self, parser: Any) -> None:
        """Link the data module's input sizes into the model."""
        for size in ("vocab_size", "char_vocab_size", "frame_size", "feature_size"):
            parser.link_arguments(f"data.{size}", f"model.init_args.{size}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Check the cell names first, so a typo is one clear error rather than a union-type report."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        model = config.get("model", {}).get("init_args", {})
        for option in CELL_OPTIONS:
            if isinstance(model.get(option), str):
                get_cell_class(model[option])

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Parse, then resolve and check ``--ckpt_path`` before Lightning reads the checkpoint's options.

        ``fit --ckpt_path last`` becomes the newest run's ``last.ckpt`` (:func:`continue_last_run`);
        a checkpoint file must be readable and hold this recipe's task (:func:`check_checkpoint_task`).
        """
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is None or config.get("ckpt_path") is None:
            return
        if subcommand == "fit" and config.ckpt_path == "last":
            config.ckpt_path = continue_last_run(config.get("trainer"))
        if config.ckpt_path not in ("last", "best", "hpc"):
            check_checkpoint_task(config.ckpt_path, config.get("model", {}).get("class_path"))

    def before_fit(self) -> None:
        """Check ``--ckpt_path`` before Lightning loads it."""
        self.check_ckpt_path()

    def before_validate(self) -> None:
        """Check ``--ckpt_path`` before Lightning loads it."""
        self.check_ckpt_path()

    def before_test(self) -> None:
        """Check ``--ckpt_path`` before Lightning loads it."""
        self.check_ckpt_path()

    def before_predict(self) -> None:
        """Check ``--ckpt_path`` before Lightning loads it."""
        self.check_ckpt_path()

    def check_ckpt_path(self) -> None:
        """A ``--ckpt_path`` file must be a readable checkpoint of this recipe's model (one clear error if not)."""
        path = self.config[self.subcommand].get("ckpt_path")
        if path is not None and path not in ("last", "best", "hpc"):
            check_checkpoint_fits(path, self.model)


def continue_last_run(trainer: Any) -> str:
    """``fit --ckpt_path last``: the newest run folder's ``last.ckpt``; the run writes into that folder.

    Lightning looks for ``last.ckpt`` in the folder of the run being started, which a logger
    without a fixed ``version`` makes new (``version_N+1``), so the run would start from scratch.
    Here the logger's ``version`` is set to the newest ``version_N`` whose ``checkpoints`` hold a
    ``last*.ckpt``, and that file (the most recent) is returned; with none, ``"last"`` is, and the
    run starts afresh as Lightning's ``last`` does (saying so).
    """
    logger = trainer.get("logger") if trainer is not None else None
    init = logger.get("init_args") if hasattr(logger, "get") else None
    if init is None or init.get("version") is not None or init.get("save_dir") is None:
        return "last"  # no logger, a fixed version, or a logger without run folders: Lightning's own lookup applies
    root = Path(init.save_dir) / str(init.get("name") or "lightning_logs")
    runs = []
    for folder in root.glob("version_*"):
        number = folder.name.removeprefix("version_")
        lasts = sorted((folder / "checkpoints").glob("last*.ckpt"), key=lambda path: path.stat().st_mtime)
        if number.isdigit() and lasts:
            runs.append((int(number), lasts[-1]))
    if not runs:
        print(f"rnnzoo: no last.ckpt under {root}: starting a new run", file=sys.stderr)
        return "last"
    init.version, path = max(runs)
    print(f"rnnzoo: resuming the run in {path.parent.parent} from {path}", file=sys.stderr)
    return str(path)


def check_checkpoint_task(ckpt_path: str, model_class: str | None) -> None:
    """Refuse an unreadable checkpoint, or one of another task than the recipe's ``model_class``.

    (Lightning then takes the model's options from the checkpoint, so a checkpoint of another
    task would silently turn the recipe into that task.)

    Raises:
        ValueError: for an unreadable file (see :func:`~rnnzoo.serialization.read_checkpoint`) or another task.
    """
    stored = read_checkpoint(ckpt_path).get("rnnzoo", {}).get("task")
    if not isinstance(stored, str) or not isinstance(model_class, str):
        return
    stored_class, recipe_class = import_class(stored), import_class(model_class)
    if not (issubclass(recipe_class, stored_class) or issubclass(stored_class, recipe_class)):
        raise ValueError(
            f"{ckpt_path!r} holds a {stored_class.__name__}, but this recipe's model is a "
            f"{recipe_class.__name__}: give a checkpoint written by this recipe"
        )


def check_checkpoint_fits(ckpt_path: str, model: LightningModule) -> None:
    """Refuse, with one clear error, a checkpoint whose weights do not fit ``model`` (e.g. another vocabulary).

    Raises:
        ValueError: naming the options that differ (or else the weights).
    """
    checkpoint = read_checkpoint(ckpt_path)
    mine = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    theirs = {name: tuple(value.shape) for name, value in checkpoint["state_dict"].items()}
    if mine == theirs:
        return
    options = checkpoint.get("hyper_parameters", {})
    differing = [
        f"{name}: {clip(repr(value), 60)} there, {clip(repr(model.hparams[name]), 60)} here"
        for name, value in options.items()
        if not name.startswith("_") and name in model.hparams and model.hparams[name] != value
    ]
    weights = sorted(set(mine.items()) ^ set(theirs.items()))
    raise ValueError(
        f"{ckpt_path!r} was written by a {type(model).__name__} built with other options "
        f"({'; '.join(differing) if differing else 'weights ' + preview(name for name, _ in weights)}): "
        "use the options it was trained with"
    )


def load_model(ckpt_path: str | None, model: str | None, device: str, kind: type[RNNTask], purpose: str) -> RNNTask:
    """A task from a Lightning checkpoint (``ckpt_path``) or a pretrained ``model``, exactly one of them.

    Raises:
        ValueError: when both or neither are given, or the task is not a ``kind`` (it cannot ``purpose``).
    """
    if (ckpt_path is None) == (model is None):
        raise ValueError("give exactly one of --ckpt_path (a Lightning checkpoint) or --model (a pretrained model)")
    check_device(device)
    task = (
        load_task(ckpt_path, map_location=device) if ckpt_path else RNNTask.from_pretrained(model, map_location=device)
    )
    if not isinstance(task, kind):
        raise ValueError(f"{ckpt_path or model!r} holds a {type(task).__name__}, which does not {purpose}")
    return task


def check_device(device: str) -> None:
    """Refuse a ``--device`` torch does not know, or one this machine lacks, before anything is loaded.

    Raises:
        ValueError: naming the device and what to give instead.
    """
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown --device {device!r}: give cpu, cuda, cuda:N or mps") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}, but torch finds no CUDA device here: give --device cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device!r}, but torch finds no MPS device here: give --device cpu")


def read_texts(text: str | list[str] | None, file: str | None, verb: str) -> list[str]:
    """The ``--text`` values, then the non-blank lines of ``--file``; at least one of them.

    The file is UTF-8 (a byte-order mark at its start is not part of the first text).

    Raises:
        FileNotFoundError: when there is no ``file``.
        ValueError: for a folder, bytes that are not UTF-8, or nothing to read.
    """
    texts = [text] if isinstance(text, str) else list(text or [])
    if file is not None:
        texts += read_lines(file)
    if not texts:
        raise ValueError(f"nothing to {verb}: give --text (one or more) or --file")
    return texts


def read_lines(file: str) -> list[str]:
    """The non-blank lines of a UTF-8 text file (``utf-8-sig``: a leading byte-order mark is dropped).

    Raises:
        FileNotFoundError: when there is no ``file``.
        ValueError: for a folder, or bytes that are not UTF-8 (naming the line and the bytes).
    """
    if os.path.isdir(file):
        raise ValueError(f"--file {file!r} is a folder: give a text file, one input a line")
    if not os.path.exists(file):
        raise FileNotFoundError(f"--file {file!r} does not exist")
    data = Path(file).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"--file {file!r} is not UTF-8 text: line {line} holds the bytes {data[error.start : error.start + 4]!r}; "
            "convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # universal newlines, as open() reads
    return [line for line in lines if line.strip()]


def generate(
    prompt: str = "\n",
    max_new_tokens: int = 500,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> None:
    """Sample text from a language model.

    Args:
        prompt: text to continue.
        max_new_tokens: how many tokens to add.
        temperature: below 1 is more conservative, 0 is greedy.
        top_k: sample among the k most likely tokens only.
        top_p: sample among the most likely tokens whose probabilities add up to p.
        seed: seed for reproducible samples.
    """


def classify(text: str | list[str] | None = None, file: str | None = None, max_length: int | None = None) -> None:
    """Classify texts with a classifier; no dataset is needed. Prints one {"text", "label", "probabilities"} a line.

    Args:
        text: a text to classify, or several (``--text+ "one" --text+ "two"``).
        file: a UTF-8 file with one text per line (blank lines are skipped).
        max_length: cut each text to this many tokens (default: as in training).
    """


def translate(
    text: str | list[str] | None = None,
    file: str | None = None,
    beam_size: int = 5,
    n_best: int = 1,
    length_penalty: float | None = None,
    max_length: int | None = None,
) -> None:
    """Translate texts with a seq2seq model. Prints one {"source", "translation", "score"[, "n_best"]} a line.

    Args:
        text: a source text (``--text+ TEXT`` adds one more).
        file: a UTF-8 file with one source text per line (blank lines are skipped).
        beam_size: beams per sentence (1: greedy).
        n_best: translations per text, best first (at most ``beam_size``).
        length_penalty: GNMT alpha (default: the model's).
        max_length: most target tokens (default: the model's).
    """


def tag(text: list[str] | str | None = None, file: str | None = None) -> None:
    """Tag sentences with a tagger; no dataset is needed. Prints one {"tokens", "tags"} a line.

    Args:
        text: a sentence to tag, words separated by spaces (``--text+ ...`` once per sentence for several).
        file: a UTF-8 file with one sentence per line (blank lines are skipped).
    """


def caption(
    condition: str | list[str] | None = None,
    image: str | list[str] | None = None,
    features: str | list[str] | None = None,
    num_samples: int = 1,
    beam_size: int = 1,
    n_best: int = 1,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_length: int | None = None,
) -> None:
    """Generate from a captioner (a category, image or feature vector in). Prints {"condition", "text", "score"} lines.

    Args:
        condition: a category such as ``Russian`` (``--condition+ NAME`` adds one more).
        image: an image file (``.ppm``, ``.pt``, ``.npy``; PNG/JPEG with Pillow), or several.
        features: a ``.pt`` or ``.npy`` file of one precomputed feature vector (``vector`` captioners), or several.
        num_samples: outputs per condition (with a ``temperature``, different samples).
        beam_size: beams per condition (1: greedy, or sampling with a temperature).
        n_best: outputs per condition from the beam, best first (at most ``beam_size``).
        temperature: sample with this temperature instead of searching.
        top_k: with a temperature, sample among the k most likely tokens.
        top_p: with a temperature, sample among the most likely tokens whose probabilities add up to p.
        seed: seed for reproducible samples.
        max_length: most tokens per output (default: the model's).
    """


@dataclass(frozen=True)
class Verb:
    """An inference command: its options, the task it needs, how its inputs and outputs look.

    Attributes:
        options: a function whose signature and docstring are the command's own options
            (``--ckpt_path``, ``--model`` and ``--device`` come with every command).
        task: the task class it runs.
        purpose: what it does, for the error when a model cannot.
        echo: the key under which each output line repeats its input (None: not repeated).
        inputs: turns the command's arguments into the list :meth:`RNNTask.predict` reads.
        show: prints the outputs.
    """

    options: Callable[..., None]
    task: type[RNNTask]
    purpose: str
    echo: str | None
    inputs: Callable[[dict[str, Any]], list[Any]]
    show: Callable[[list[dict[str, Any]]], None]


def _json_lines(outputs: list[dict[str, Any]]) -> None:
    for output in outputs:
        print(json.dumps(output, ensure_ascii=False))


def _conditions(arguments: dict[str, Any]) -> list[Any]:
    given = [arguments.pop(name) for name in ("condition", "image", "features")]
    if sum(bool(value) for value in given) != 1:
        raise ValueError(
            "give one of --condition (a category), --image (an image file) or --features (a feature vector file), "
            "one or more of it"
        )
    conditions = [item for value in given for item in ([value] if isinstance(value, str) else value or [])]
    samples = arguments.pop("num_samples")
    if samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {samples}")
    return [c for c in conditions for _ in range(samples)]


def _texts(verb: str) -> Callable[[dict[str, Any]], list[str]]:
    return lambda arguments: read_texts(arguments.pop("text"), arguments.pop("file"), verb)


def _prompt(arguments: dict[str, Any]) -> list[str]:
    arguments["max_length"] = arguments.pop("max_new_tokens")
    return [arguments.pop("prompt")]


VERBS: dict[str, Verb] = {
    "generate": Verb(
        generate, LanguageModel, "generate text from a prompt (use rnnzoo caption)", None, _prompt,
        lambda outputs: print(outputs[0]["text"]),
    ),
    "classify": Verb(classify, Classifier, "classify text", "text", _texts("classify"), _json_lines),
    "translate": Verb(translate, Seq2Seq, "translate text", "source", _texts("translate"), _json_lines),
    "tag": Verb(tag, Tagger, "tag text", None, _texts("tag"), _json_lines),
    "caption": Verb(caption, Captioner, "caption", "condition", _conditions, _json_lines),
}  # fmt: skip
"""The inference commands, each one call of the task's :meth:`~rnnzoo.tasks.RNNTask.predict`."""


def run_verb(verb: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """Load the model, read the inputs, ``predict`` with the remaining options (None: the model's default)."""
    spec, arguments = VERBS[verb], dict(arguments)
    inputs = spec.inputs(arguments)
    task = load_model(
        arguments.pop("ckpt_path"), arguments.pop("model"), arguments.pop("device"), spec.task, spec.purpose
    )
    outputs = task.predict(inputs, **{name: value for name, value in arguments.items() if value is not None})
    if spec.echo is not None:
        outputs = [{spec.echo: str(given), **output} for given, output in zip(inputs, outputs, strict=True)]
    return outputs


def _verb_parser(name: str) -> ArgumentParser:
    verb = VERBS[name]
    parser = ArgumentParser(prog=f"rnnzoo {name}", description=verb.options.__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", type=str | None, default=None, help="a checkpoint written by rnnzoo fit")
    parser.add_argument(
        "--model", type=str | None, default=None, help="or a pretrained model: a bundled name (rnnzoo.list_models()), "
        "an artifact folder or a HuggingFace hub repo id",
    )  # fmt: skip
    parser.add_argument("--device", type=str, default="cpu", help="where to run (cpu, cuda)")
    parser.add_function_arguments(verb.options)
    return parser


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


def _serve() -> Callable[..., None]:
    try:
        from rnnzoo.serve import serve
    except ImportError as error:
        raise RuntimeError(str(error)) from None
    return serve


def _function_command(name: str, args: list[str]) -> None:
    if name in VERBS:
        VERBS[name].show(run_verb(name, _verb_parser(name).parse_args(args).as_dict()))
        return
    function = export if name == "export" else _serve()
    parser = ArgumentParser(prog=f"rnnzoo {name}", description=function.__doc__.splitlines()[0])
    parser.add_function_arguments(function)
    result = function(**parser.parse_args(args).as_dict())
    if result is not None:
        print(result)


COMMANDS = (*VERBS, "export", "serve")
"""Commands beside LightningCLI's."""


def _lightning_cli(args: list[str] | None) -> None:
    if any(arg.split("=")[0] in ("--optimizer", "--lr_scheduler") for arg in args or sys.argv[1:]):
        raise ValueError(
            "set the optimizer and scheduler on the model (--model.optimizer, --model.scheduler, as the recipes "
            "do): the task applies them, ReduceLROnPlateau's monitor included"
        )
    RnnzooCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "description": "Train and evaluate rnnzoo models from YAML recipes. "
            "To use a checkpoint: rnnzoo generate --help (language models), rnnzoo classify --help "
            "(classifiers), rnnzoo translate --help (seq2seq), rnnzoo tag --help (taggers), "
            "rnnzoo caption --help (captioners), rnnzoo export --help (to a pretrained artifact), "
            "rnnzoo serve --help (over HTTP)"
        },
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``rnnzoo`` command: one error boundary for training and inference."""
    argv = sys.argv[1:] if args is None else list(args)
    try:
        if argv and argv[0] in COMMANDS:
            _function_command(argv[0], argv[1:])
        else:
            _lightning_cli(args)
    except USER_ERRORS as error:
        if os.environ.get("RNNZOO_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"rnnzoo: error: {message}\n(set RNNZOO_DEBUG=1 to see the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
