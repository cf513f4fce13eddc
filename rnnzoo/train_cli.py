"""Training from YAML recipes: LightningCLI with rnnzoo's links and checks (``rnnzoo fit``, ``test`` ...).

:mod:`rnnzoo.cli` hands every command that is not an inference command here, so that the
inference commands never import Lightning's CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from rnnzoo.cells import get_cell_class
from rnnzoo.errors import clip, preview
from rnnzoo.predictions import JsonLinesWriter
from rnnzoo.serialization import import_class, read_checkpoint

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
        """Link the data module's input sizes into the model; ``predict --output FILE`` writes JSON lines."""
        for size in ("vocab_size", "char_vocab_size", "frame_size", "feature_size"):
            parser.link_arguments(f"data.{size}", f"model.init_args.{size}", apply_on="instantiate")
        parser.add_argument(
            "--output", type=str | None, default=None, help="predict: write one JSON line per row of the split here"
        )

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
        ``validate``, ``test`` and ``predict`` take ``last`` and ``best`` from the newest run folder
        too (:func:`checkpoint_of_newest_run`), since in a new process Lightning would look in the
        folder of the run being started, which holds none; a checkpoint file must be readable and
        hold this recipe's task (:func:`check_checkpoint_task`).
        """
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is None or config.get("ckpt_path") is None:
            return
        if subcommand == "fit" and config.ckpt_path == "last":
            config.ckpt_path = continue_last_run(config.get("trainer"))
        elif subcommand != "fit" and config.ckpt_path in ("last", "best"):
            config.ckpt_path = checkpoint_of_newest_run(config.get("trainer"), config.ckpt_path)
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
        """Check ``--ckpt_path``; with ``--output``, write the predictions there rather than keep them in memory."""
        self.check_ckpt_path()
        config = self.config_init[self.subcommand]
        if config.get("output") is not None:
            self.trainer.callbacks.append(JsonLinesWriter(config.output))
            config.return_predictions = False

    def check_ckpt_path(self) -> None:
        """A ``--ckpt_path`` file must be a readable checkpoint of this recipe's model (one clear error if not)."""
        config = self.config[self.subcommand]
        if self.subcommand != "predict" and config.get("output") is not None:
            raise ValueError(f"--output is for rnnzoo predict; {self.subcommand} writes no predictions")
        path = config.get("ckpt_path")
        if path is not None and path not in ("last", "best", "hpc"):
            check_checkpoint_fits(path, self.model)


def run_folders(trainer: Any) -> tuple[Path, dict[int, Path]] | None:
    """The recipe logger's run folders, ``{N: save_dir/name/version_N}``, and the folder above them.

    None without a logger, with a logger that has no ``save_dir`` or with a fixed ``version``:
    Lightning's own checkpoint lookup applies then.
    """
    logger = trainer.get("logger") if trainer is not None else None
    init = logger.get("init_args") if hasattr(logger, "get") else None
    if init is None or init.get("version") is not None or init.get("save_dir") is None:
        return None
    root = Path(init.save_dir) / str(init.get("name") or "lightning_logs")
    numbers = {folder: folder.name.removeprefix("version_") for folder in root.glob("version_*")}
    return root, {int(number): folder for folder, number in numbers.items() if number.isdigit()}


def newest_checkpoints(folder: Path, pattern: str) -> list[Path]:
    """The checkpoints in ``folder/checkpoints`` whose names match ``pattern``, oldest first."""
    return sorted((folder / "checkpoints").glob(pattern), key=lambda path: path.stat().st_mtime)


def continue_last_run(trainer: Any) -> str:
    """``fit --ckpt_path last``: the newest run folder's ``last.ckpt``; the run writes into that folder.

    Lightning looks for ``last.ckpt`` in the folder of the run being started, which a logger
    without a fixed ``version`` makes new (``version_N+1``), so the run would start from scratch.
    Here the logger's ``version`` is set to the newest ``version_N`` whose ``checkpoints`` hold a
    ``last*.ckpt``, and that file (the most recent) is returned; with none, ``"last"`` is, and the
    run starts afresh as Lightning's ``last`` does (saying so).
    """
    found = run_folders(trainer)
    if found is None:
        return "last"
    root, folders = found
    runs = [(number, newest_checkpoints(folder, "last*.ckpt")) for number, folder in folders.items()]
    runs = [(number, lasts[-1]) for number, lasts in runs if lasts]
    if not runs:
        print(f"rnnzoo: no last.ckpt under {root}: starting a new run", file=sys.stderr)
        return "last"
    number, path = max(runs)
    trainer.get("logger").get("init_args").version = number
    print(f"rnnzoo: resuming the run in {path.parent.parent} from {path}", file=sys.stderr)
    return str(path)


def checkpoint_of_newest_run(trainer: Any, which: str) -> str:
    """``validate`` / ``test`` / ``predict --ckpt_path last|best``: that checkpoint of the newest run that saved any.

    ``last`` is the newest run's most recent ``last*.ckpt``; ``best`` is the file its
    ``ModelCheckpoint`` (``rnnzoo.Checkpoint``) recorded as best by the monitored metric, read from
    the run's most recent checkpoint. The path is printed, so the run evaluated is never a guess.

    Raises:
        ValueError: when no run saved a checkpoint, or the run recorded no best one (no ``monitor``).
    """
    found = run_folders(trainer)
    if found is None:
        return which
    root, folders = found
    runs = [(number, newest_checkpoints(folder, "*.ckpt")) for number, folder in folders.items()]
    runs = [(number, saved) for number, saved in runs if saved]
    if not runs:
        raise ValueError(
            f"--ckpt_path {which}: no run under {root} saved a checkpoint; fit the recipe first, or give a .ckpt file"
        )
    _, saved = max(runs)
    folder = saved[-1].parent.parent
    if which == "last":
        lasts = [path for path in saved if path.name.startswith("last")]
        if not lasts:
            raise ValueError(f"--ckpt_path last: {folder} holds no last.ckpt; give one of its checkpoints' paths")
        path = lasts[-1]
        print(f"rnnzoo: using the last checkpoint of {folder}: {path}", file=sys.stderr)
        return str(path)
    states = read_checkpoint(saved[-1]).get("callbacks", {}).values()
    best = [state for state in states if isinstance(state, dict) and state.get("best_model_path")]
    if not best:
        raise ValueError(
            f"--ckpt_path best: the run in {folder} recorded no best checkpoint (its checkpoint callback has no "
            "monitor); give --ckpt_path last or a .ckpt file"
        )
    recorded = Path(best[0]["best_model_path"])
    path = recorded if recorded.is_file() else folder / "checkpoints" / recorded.name  # the run folder was moved
    if not path.is_file():
        raise ValueError(f"--ckpt_path best: the best checkpoint {str(recorded)!r} of {folder} is gone")
    score = best[0].get("best_model_score")
    metric = f" ({best[0].get('monitor')} {float(score):.4g})" if score is not None else ""
    print(f"rnnzoo: using the best checkpoint of {folder}{metric}: {path}", file=sys.stderr)
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


def run_lightning_cli(args: list[str] | None) -> None:
    """Run LightningCLI (``fit``, ``validate``, ``test``, ``predict``) on ``args`` (None: the command line)."""
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
