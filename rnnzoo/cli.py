"""The ``rnnzoo`` command: a LightningCLI for training, and one inference command per task over ``predict``.

rnnzoo fit --config recipes/language_model/tiny_shakespeare-lstm.yaml
rnnzoo test --config ... --ckpt_path path/to/last.ckpt
rnnzoo generate --ckpt_path path/to/last.ckpt --prompt "ROMEO:"
rnnzoo classify --ckpt_path path/to/last.ckpt --text "a gripping, funny film"
rnnzoo export --ckpt_path path/to/best.ckpt --out my-model    (a safetensors artifact; see rnnzoo.hub)
rnnzoo export --model sst2-gru_small --format onnx --quantize int8 --out sst2-onnx   (needs rnnzoo[onnx])
rnnzoo classify --runtime onnx --model sst2-onnx --text "a gripping, funny film"
rnnzoo generate --model tiny_shakespeare-lstm_small --prompt "ROMEO:"  (a bundled pretrained model, offline)
rnnzoo translate --ckpt_path path/to/last.ckpt --text "Ein Hund läuft im Schnee." --beam_size 5
rnnzoo tag --ckpt_path path/to/last.ckpt --text "The cat sat on the mat ."
rnnzoo caption --ckpt_path path/to/last.ckpt --condition Russian --num_samples 5 --temperature 0.8
rnnzoo caption --ckpt_path path/to/last.ckpt --image photo.ppm --beam_size 3
rnnzoo caption --ckpt_path path/to/last.ckpt --image photo.jpg --plot attention.png  (where each word looks)
rnnzoo serve --model sst2-gru_small --port 8000            (HTTP: POST /predict, GET /health; needs rnnzoo[serve])
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from jsonargparse import ArgumentParser

# No module-level import of torch, Lightning or the tasks (nor a TYPE_CHECKING block, which jsonargparse runs):
# a command's --help stays fast, and the tasks are imported once a command runs.

USER_ERRORS = (ValueError, KeyError, FileNotFoundError, ConnectionError, RuntimeError)
"""Errors that mean "fix your input": one line, for training and inference alike, unless RNNZOO_DEBUG=1."""


def load_model(
    ckpt_path: str | None,
    model: str | None,
    device: str,
    kind: type | str,
    purpose: str,
    quantize: str | None = None,
    runtime: str = "torch",
) -> Any:
    """A task from a Lightning checkpoint (``ckpt_path``) or a pretrained ``model``, exactly one of them.

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: a bundled name, an artifact folder or a hub repo id (with ``runtime="onnx"``: an ONNX export folder).
        device: where to run.
        kind: the task class the caller needs (or its name in :mod:`rnnzoo.tasks`).
        purpose: what the caller does, for the error when the task is not a ``kind``.
        quantize: ``"int8"``: dynamic int8 quantization of the PyTorch model (CPU only).
        runtime: ``"torch"``, or ``"onnx"``: the task's graphs run on ONNX Runtime (:class:`rnnzoo.export.OnnxModel`).

    Returns:
        The :class:`~rnnzoo.RNNTask`, in eval mode.

    Raises:
        ValueError: when both or neither are given, the task is not a ``kind`` (it cannot ``purpose``), or the
            runtime, quantization and device do not go together.
    """
    if (ckpt_path is None) == (model is None):
        raise ValueError("give exactly one of --ckpt_path (a Lightning checkpoint) or --model (a pretrained model)")
    check_device(device)
    from rnnzoo.tasks import RNNTask, load_task  # here, not at the top: a command's --help imports no torch

    kind = getattr(importlib.import_module("rnnzoo.tasks"), kind) if isinstance(kind, str) else kind
    if runtime == "onnx":
        if ckpt_path is not None or quantize is not None or device != "cpu":
            raise ValueError(
                "--runtime onnx runs an ONNX export folder on the CPU: give --model DIR (written by rnnzoo export "
                "--format onnx, which chose its quantization) without --ckpt_path, --quantize or --device"
            )
        from rnnzoo.export.runtime import OnnxModel

        task = OnnxModel(model).task
    elif ckpt_path:
        task = load_task(ckpt_path, map_location=device)
    else:
        task = RNNTask.from_pretrained(model, map_location=device)
    if not isinstance(task, kind):
        raise ValueError(f"{ckpt_path or model!r} holds a {type(task).__name__}, which does not {purpose}")
    if quantize == "int8":
        if device != "cpu":
            raise ValueError("--quantize int8 (dynamic quantization) runs on the CPU: give --device cpu")
        from rnnzoo.export.quantize import quantize_int8

        task = quantize_int8(task)
    return task


def check_device(device: str) -> None:
    """Refuse a ``--device`` torch does not know, or one this machine lacks, before anything is loaded.

    Raises:
        ValueError: naming the device and what to give instead.
    """
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown --device {device!r}: give cpu, cuda, cuda:N or mps") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}, but torch finds no CUDA device here: give --device cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device!r}, but torch finds no MPS device here: give --device cpu")


BLOCK_LINES = 256
"""Lines of ``--file`` read, predicted and written at a time: a file of any size is never held whole."""


def read_texts(text: str | list[str] | None, file: str | None, verb: str) -> Iterator[list[str]]:
    """The ``--text`` values, then the non-blank lines of ``--file`` in blocks of ``block``; at least one text.

    The file is UTF-8 (a byte-order mark at its start is not part of the first text); its blocks
    hold :data:`BLOCK_LINES` lines.

    Raises:
        FileNotFoundError: when there is no ``file``.
        ValueError: for a folder, bytes that are not UTF-8, or nothing to read.
    """
    texts = [text] if isinstance(text, str) else list(text or [])
    if texts:
        yield texts
    given = bool(texts)
    for lines in [] if file is None else read_lines(file, BLOCK_LINES):
        given = True
        yield lines
    if not given:
        raise ValueError(f"nothing to {verb}: give --text (one or more) or --file")


def read_lines(file: str, block: int = BLOCK_LINES) -> Iterator[list[str]]:
    """The non-blank lines of a UTF-8 text file in blocks of up to ``block`` (``utf-8-sig``: a leading BOM is dropped).

    Raises:
        FileNotFoundError: when there is no ``file``.
        ValueError: for a folder, or bytes that are not UTF-8 (naming the line and the bytes).
    """
    if os.path.isdir(file):
        raise ValueError(f"--file {file!r} is a folder: give a text file, one input a line")
    if not os.path.exists(file):
        raise FileNotFoundError(f"--file {file!r} does not exist")
    lines: list[str] = []
    with open(file, encoding="utf-8-sig") as handle:  # universal newlines
        try:
            for line in handle:
                if line.strip():
                    lines.append(line.removesuffix("\n"))
                if len(lines) == block:
                    yield lines
                    lines = []
        except UnicodeDecodeError:
            raise _not_utf8(file) from None
    if lines:
        yield lines


def _not_utf8(file: str) -> ValueError:
    """The error for a file that is not UTF-8, naming its first bad line and bytes (found reading line by line)."""
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return ValueError(
                    f"--file {file!r} is not UTF-8 text: line {number} holds the bytes "
                    f"{raw[error.start : error.start + 4]!r}; convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                )
    return ValueError(f"--file {file!r} is not UTF-8 text; convert it to UTF-8")


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
    plot: str | None = None,
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
        plot: draw the attention of the caption over the image into this file (PNG, PDF, SVG; one ``--image``,
            a captioner with attention; needs ``rnnzoo[plot]``); the output line names it under ``"plot"``.
    """


@dataclass(frozen=True)
class Verb:
    """An inference command: its options, the task it needs, how its inputs and outputs look.

    Attributes:
        options: a function whose signature and docstring are the command's own options
            (``--ckpt_path``, ``--model`` and ``--device`` come with every command).
        task: the name of the task class it runs (in :mod:`rnnzoo.tasks`, imported when the command runs).
        purpose: what it does, for the error when a model cannot.
        echo: the key under which each output line repeats its input (None: not repeated).
        inputs: turns the command's arguments into the lists :meth:`RNNTask.predict` reads, block by block.
        show: prints a block of outputs.
    """

    options: Callable[..., None]
    task: str
    purpose: str
    echo: str | None
    inputs: Callable[[dict[str, Any]], Iterable[list[Any]]]
    show: Callable[[list[dict[str, Any]]], None]


def _json_lines(outputs: list[dict[str, Any]], stream: TextIO | None = None) -> None:
    for output in outputs:
        print(json.dumps(output, ensure_ascii=False), file=stream)


def _conditions(arguments: dict[str, Any]) -> list[list[Any]]:
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
    if arguments.get("plot") is not None:
        check_plot(arguments, images=[] if given[1] is None else conditions, samples=samples)
    return [[c for c in conditions for _ in range(samples)]]


def check_plot(arguments: dict[str, Any], images: list[Any], samples: int) -> None:
    """``caption --plot FILE`` draws one caption of one image with the PyTorch model, matplotlib installed.

    Raises:
        ValueError: for other inputs, several outputs, ``--runtime onnx`` or no matplotlib.
    """
    if len(images) != 1 or samples != 1 or arguments.get("n_best", 1) != 1:
        raise ValueError(
            "--plot draws the attention of one caption over one image: give one --image, without --num_samples "
            "or --n_best"
        )
    if arguments.get("runtime") == "onnx":
        raise ValueError("--plot reads the attention of the PyTorch model: drop --runtime onnx")
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install 'rnnzoo[plot]'")


def _texts(verb: str) -> Callable[[dict[str, Any]], Iterator[list[str]]]:
    return lambda arguments: read_texts(arguments.pop("text"), arguments.pop("file"), verb)


def _prompt(arguments: dict[str, Any]) -> list[list[str]]:
    arguments["max_length"] = arguments.pop("max_new_tokens")
    return [[arguments.pop("prompt")]]


VERBS: dict[str, Verb] = {
    "generate": Verb(
        generate, "LanguageModel", "generate text from a prompt (use rnnzoo caption)", None, _prompt,
        lambda outputs: print(outputs[0]["text"]),
    ),
    "classify": Verb(classify, "Classifier", "classify text", "text", _texts("classify"), _json_lines),
    "translate": Verb(translate, "Seq2Seq", "translate text", "source", _texts("translate"), _json_lines),
    "tag": Verb(tag, "Tagger", "tag text", None, _texts("tag"), _json_lines),
    "caption": Verb(caption, "Captioner", "caption", "condition", _conditions, _json_lines),
}  # fmt: skip
"""The inference commands, each one call of the task's :meth:`~rnnzoo.tasks.RNNTask.predict`."""


def run_verb(verb: str, arguments: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Load the model, then ``predict`` block by block of inputs with the remaining options (None: the default).

    The first block is read before the model loads, so that bad input fails fast; the outputs
    come block by block, in the inputs' order, so a file of any size streams through.
    """
    spec, arguments = VERBS[verb], dict(arguments)
    arguments.pop("output", None)
    blocks = iter(spec.inputs(arguments))
    first = next(blocks)
    plot = arguments.pop("plot", None)  # caption --plot FILE, checked by the inputs
    where = [arguments.pop(name) for name in ("ckpt_path", "model", "device")]
    task = load_model(*where, spec.task, spec.purpose, arguments.pop("quantize"), arguments.pop("runtime"))
    options = {name: value for name, value in arguments.items() if value is not None}
    for inputs in itertools.chain([first], blocks):
        outputs = task.predict(inputs, **options)
        if plot is not None:
            outputs[0]["plot"] = task.plot_attention(inputs[0], outputs[0]["text"], plot)
        if spec.echo is not None:
            outputs = [{spec.echo: str(given), **output} for given, output in zip(inputs, outputs, strict=True)]
        yield outputs


def _verb_parser(name: str) -> ArgumentParser:
    verb = VERBS[name]
    parser = ArgumentParser(prog=f"rnnzoo {name}", description=verb.options.__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", type=str | None, default=None, help="a checkpoint written by rnnzoo fit")
    parser.add_argument(
        "--model", type=str | None, default=None, help="or a pretrained model: a bundled name (rnnzoo.list_models()), "
        "an artifact folder or a HuggingFace hub repo id",
    )  # fmt: skip
    parser.add_argument("--device", type=str, default="cpu", help="where to run (cpu, cuda)")
    parser.add_argument(
        "--quantize", type=Literal["int8"] | None, default=None, help="int8: dynamic int8 quantization (CPU)"
    )
    parser.add_argument(
        "--runtime", type=Literal["torch", "onnx"], default="torch",
        help="onnx: run an ONNX export folder (--model DIR, from rnnzoo export --format onnx) on ONNX Runtime",
    )  # fmt: skip
    parser.add_argument(
        "--output", type=str | None, default=None, help="write the outputs to this file, one JSON line per input"
    )
    parser.add_function_arguments(verb.options)
    return parser


def export(
    out: str,
    ckpt_path: str | None = None,
    model: str | None = None,
    format: Literal["safetensors", "onnx"] = "safetensors",
    quantize: Literal["int8"] | None = None,
    dataset: str | None = None,
    recipe: str | None = None,
    command: str | None = None,
    data_license: str | None = None,
    metrics: dict[str, float] | None = None,
) -> str:
    """Write a model as a pretrained artifact folder (safetensors, tokenizer, model card), or as ONNX graphs.

    Args:
        out: the folder to write.
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: or a pretrained model (bundled name, artifact folder or hub repo id).
        format: ``safetensors`` (an artifact) or ``onnx`` (the encoder and decoding-step graphs beside one).
        quantize: ``int8``: ONNX Runtime's dynamic int8 quantization of the graphs (``--format onnx``).
        dataset: the training data, for the model card.
        recipe: the recipe used, for the model card.
        command: the training command, for the model card.
        data_license: the licence of the training data, for the model card.
        metrics: test metrics measured, name -> value, for the model card.
    """
    check_export_folder(out)
    if quantize is not None and format != "onnx":
        raise ValueError(
            "--quantize int8 quantizes ONNX graphs (--format onnx); a safetensors artifact keeps float weights: "
            "quantize when loading it instead (--quantize int8 on rnnzoo classify, tag, generate ...)"
        )
    task = load_model(ckpt_path, model, "cpu", "RNNTask", "export")
    if format == "onnx":
        from rnnzoo.export.onnx import export_onnx

        export_onnx(task, out, quantize)
        return f"wrote {out}: run it with rnnzoo.export.OnnxModel({out!r}), or --runtime onnx --model {out}"
    card = {"dataset": dataset, "recipe": recipe, "command": command, "data_license": data_license}
    task.save_pretrained(out, model_card_kwargs={**card, "metrics": metrics, "name": out})
    return f"wrote {out}: load it with RNNTask.from_pretrained({out!r}) or --model {out}"


def check_export_folder(out: str) -> None:
    """Refuse an ``--out`` that is a file, or that ``--model`` would read as a bundled model's name.

    Raises:
        ValueError: naming the clash and what to give instead.
    """
    from rnnzoo.hub.zoo import ZOO

    if out in ZOO:
        raise ValueError(
            f"--out {out!r} is the name of a bundled model: --model {out} would load the bundled one, not this "
            f"folder. Name the folder otherwise, or write it as ./{out} and load it with --model ./{out}"
        )
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a file: give a folder to write the artifact into (new, or one to replace)")


def _serve() -> Callable[..., None]:
    try:
        from rnnzoo.serve import serve
    except ImportError as error:
        raise RuntimeError(str(error)) from None
    return serve


def _function_command(name: str, args: list[str]) -> None:
    if name in VERBS:
        arguments = _verb_parser(name).parse_args(args).as_dict()
        if arguments["output"] is None:
            for outputs in run_verb(name, arguments):
                VERBS[name].show(outputs)
            return
        blocks = run_verb(name, arguments)
        first = next(blocks)  # input and model errors before the output file is created
        with open(arguments["output"], "w", encoding="utf-8") as stream:
            for outputs in itertools.chain([first], blocks):
                _json_lines(outputs, stream)
        return
    function = export if name == "export" else _serve()
    parser = ArgumentParser(prog=f"rnnzoo {name}", description=function.__doc__.splitlines()[0])
    parser.add_function_arguments(function)
    result = function(**parser.parse_args(args).as_dict())
    if result is not None:
        print(result)


COMMANDS = (*VERBS, "export", "serve")
"""Commands beside LightningCLI's."""

OVERVIEW = """usage: rnnzoo COMMAND [options]      (rnnzoo COMMAND --help: the options of one command)

Train and evaluate, from YAML recipes (LightningCLI):
  fit        train: rnnzoo fit --config recipes/<task>/<dataset>-<cell>.yaml (--ckpt_path last resumes)
  validate   one pass over the validation split
  test       one pass over the test split (--ckpt_path best, last or a .ckpt file)
  predict    the test split's predictions (--output FILE: one JSON line each)

Run a model, from a checkpoint (--ckpt_path) or a pretrained model (--model NAME|FOLDER):
  generate   sample text from a language model
  classify   classify texts
  translate  translate texts (greedy or beam search)
  tag        tag the words of sentences
  caption    generate from a category, an image or a feature vector

Deploy:
  export     write a pretrained artifact (safetensors) or ONNX graphs (--format onnx, --quantize int8)
  serve      answer HTTP requests (POST /predict, GET /health) with LitServe
"""
"""What ``rnnzoo`` alone or ``rnnzoo --help`` prints: every command, without importing Lightning."""


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``rnnzoo`` command: one error boundary for training and inference."""
    argv = sys.argv[1:] if args is None else list(args)
    if not argv or argv[0] in ("-h", "--help"):
        print(OVERVIEW, end="")
        raise SystemExit(0 if argv else 2)
    try:
        if argv and argv[0] in COMMANDS:
            _function_command(argv[0], argv[1:])
        else:
            from rnnzoo.train_cli import run_lightning_cli  # training needs Lightning's CLI; inference does not

            run_lightning_cli(args)
    except USER_ERRORS as error:
        if os.environ.get("RNNZOO_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"rnnzoo: error: {message}\n(set RNNZOO_DEBUG=1 to see the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
