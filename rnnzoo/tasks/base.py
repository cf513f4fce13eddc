"""What every task shares, so that each task file holds only its model, its loss and its inputs.

:class:`RNNTask` owns:

* the backbone by name (:meth:`~RNNTask.build_backbone`, from the cell registry);
* the injected optimizer and scheduler (:meth:`~RNNTask.configure_optimizers`);
* the metrics: declared once per task (:meth:`~RNNTask.stage_metrics`), cloned per stage,
  reset and logged here, so no task overrides an epoch hook;
* the data state (:class:`~rnnzoo.data_state.DataState`: tokenizers, labels, input
  options), taken from the data module at ``setup()``, checked, and stored in checkpoints
  and artifacts alike;
* pretrained word vectors: the token embedding (:meth:`~RNNTask.build_embedding`) that the
  ``embeddings`` file fills at the first fit (:meth:`~RNNTask.load_pretrained_vectors`);
* one inference API, :meth:`~RNNTask.predict`, behind ``predict_step``, the command line and serving.

A task implements a few hooks: :meth:`training_loss`, :meth:`evaluate`,
:meth:`encode_inputs`, :meth:`predict_batch` and, when it checks its data, :meth:`check_data_state`.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelHubMixin
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR
from torchmetrics import MeanMetric, Metric, MetricCollection

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell
from rnnzoo.checkpointing import rng_states, set_rng_states
from rnnzoo.data_state import DataState
from rnnzoo.embeddings import Coverage, load_vectors
from rnnzoo.gradients import global_grad_norm
from rnnzoo.nn.embedding import PretrainedEmbedding, vector_words
from rnnzoo.serialization import FORMAT, check_format, class_path, import_class, read_checkpoint
from rnnzoo.tokenizers import Tokenizer

LOSS_CHECK_EVERY = 50
"""On an accelerator, the training loss is checked for NaN or inf every this many steps (on the CPU: every step)."""

STAGES = ("val", "test")
"""The stages whose metrics are accumulated over an epoch and logged at its end."""

MODEL_CARD = """---
{{ card_data }}
---

# {{ name }}

An rnnzoo `{{ task }}` ({{ summary }}), {{ num_params }} parameters.

- **Data**: {{ dataset | default("not recorded", true) }}
- **Licence of the data**: {{ data_license | default("not recorded", true) }}
- **Word vectors**: {{ vectors | default("none", true) }}
- **Recipe**: {{ recipe | default("not recorded", true) }}
- **Trained with**: `{{ command | default("not recorded", true) }}`

## Metrics measured on the test split

{{ metrics_table }}

## Use

```python
from rnnzoo import RNNTask

model = RNNTask.from_pretrained("{{ source }}")
model.predict([...])
```
"""


class RNNTask(
    LightningModule, ModelHubMixin, library_name="rnnzoo", tags=["rnnzoo", "rnn"], model_card_template=MODEL_CARD
):
    """Base class of the rnnzoo tasks (see the module docstring for what it owns).

    Logs ``train_loss`` and ``grad_norm`` (the global gradient norm before clipping;
    clip with the Trainer's ``gradient_clip_val``) every step, and ``{stage}_loss`` plus
    the task's metrics per validation and test epoch.

    Args:
        optimizer: builds the optimizer from the parameters; AdamW(lr=1e-3) if None.
        scheduler: builds an LR scheduler from the optimizer, stepped every
            training step (``ReduceLROnPlateau`` is stepped on ``val_loss`` per epoch).
    """

    def __init__(
        self, optimizer: OptimizerCallable | None = None, scheduler: LRSchedulerCallable | None = None
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.data_state = DataState()
        self.metrics = self.stage_metrics()
        self._resumed_rng: dict[str, Any] | None = None
        self._losses_finite: Tensor | None = None

    @staticmethod
    def build_backbone(cell: str, input_size: int, hidden_size: int, **options: Any) -> RecurrentBackbone:
        """The backbone registered as ``cell`` (see :func:`rnnzoo.list_cells`)."""
        return build_cell(cell, input_size, hidden_size, **options)

    def build_embedding(
        self, vocab_size: int, embedding_size: int, padding_idx: int | None = None
    ) -> PretrainedEmbedding:
        """The token embedding, a :class:`~rnnzoo.nn.PretrainedEmbedding` that the ``embeddings`` file fills.

        It reads the task's hyper-parameters ``embeddings``, ``vectors_size``, ``freeze_embeddings`` and
        ``trained_embedding_size`` (a task without them gets a plain embedding); the file itself is read
        only at the first fit. The backbone reads its ``output_size`` features.

        Raises:
            ValueError: for ``vectors_size``, ``freeze_embeddings`` or ``trained_embedding_size`` without
                ``embeddings``.
        """
        hp = self.hparams
        path, size, freeze = hp.get("embeddings"), hp.get("vectors_size"), bool(hp.get("freeze_embeddings"))
        trained = hp.get("trained_embedding_size") or 0
        if path is None and (size is not None or freeze or trained):
            raise ValueError(
                "vectors_size, freeze_embeddings and trained_embedding_size describe the pretrained vectors of "
                "embeddings: give embeddings (a GloVe / word2vec / fastText text file) too, or drop them"
            )
        return PretrainedEmbedding(vocab_size, embedding_size, size, freeze, padding_idx, trained)

    def embedding_vocabulary(self) -> tuple[PretrainedEmbedding, Tokenizer | None]:
        """Hook: the embedding the ``embeddings`` vectors fill, and the tokenizer whose words index its rows."""
        return self.embedding, self.tokenizer

    def on_fit_start(self) -> None:
        """Fill the embedding from the ``embeddings`` file at the first fit (see :meth:`load_pretrained_vectors`)."""
        self.load_pretrained_vectors()

    def load_pretrained_vectors(self) -> Coverage | None:
        """Fill the embedding with the vectors of the ``embeddings`` hyper-parameter's file, once.

        Called when a fit starts, after a resumed checkpoint is restored. The weights then live in the
        state_dict, and the file's name, width and the coverage go into ``data_state.options["embeddings"]``
        (so into checkpoints and artifacts): loading the model never needs the file again, and a later fit
        (fine-tuning a loaded model, a resumed run) keeps the trained rows.

        Returns:
            The coverage (also printed), or None when there was nothing to do.

        Raises:
            ValueError: for a tokenizer whose tokens are not words (checked before the file is read), a
                width that is not the table's, or a vocabulary with no word in the file.
        """
        path = self.hparams.get("embeddings")
        if path is None or "embeddings" in self.data_state.options:
            return None
        embedding, tokenizer = self.embedding_vocabulary()
        words = vector_words(tokenizer)
        vectors = load_vectors(path)
        coverage = embedding.load_vectors(vectors, words)
        rank_zero_info(f"pretrained word vectors {coverage}")
        counts = {key: getattr(coverage, key) for key in ("exact", "lowercased", "missing", "special")}
        self.data_state.options["embeddings"] = {
            "file": Path(path).name,
            "path": str(path),
            "words": len(vectors),
            "dim": vectors.dim,
            "frozen": embedding.frozen,
            "coverage": {**counts, "fraction": round(coverage.fraction, 6)},
        }
        return coverage

    # The data state: tokenizers, labels and input options.

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The tokenizer the model was trained with (None before ``setup()`` or for frame inputs)."""
        return self.data_state.tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: Tokenizer | None) -> None:
        self.data_state.tokenizer = tokenizer

    @property
    def labels(self) -> list[int | str] | None:
        """The label values by class index, from the data (None until known)."""
        return self.data_state.labels

    @property
    def label_names(self) -> list[str] | None:
        """Readable names of :attr:`labels`."""
        return self.data_state.label_names

    def setup(self, stage: str) -> None:
        """Take the data module's data state (first fit) or check it equals the model's, then check it fits."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None:
            self.adopt_data_state(data_state_of(datamodule))
        self.check_data_state()

    def adopt_data_state(self, state: DataState) -> None:
        """Fill what the model does not know yet from ``state``; refuse a state that contradicts it.

        Raises:
            ValueError: when ``state`` holds another tokenizer or other labels than the model's.
        """
        differences = self.data_state.differences(state)
        if differences:
            verb = "differs" if len(differences) == 1 else "differ"
            raise ValueError(
                f"the data module's {' and '.join(differences)} {verb} from the model's: the model would read ids "
                "it was not trained on or name its predictions wrongly. Build both from the same training split "
                "(or reuse the model's tokenizer with the data module's pretrained_tokenizer)."
            )
        mine = self.data_state
        for name in ("tokenizer", "char_tokenizer", "labels", "label_names"):
            if getattr(mine, name) is None:
                setattr(mine, name, getattr(state, name))
        mine.options = {**state.options, **mine.options}

    def check_data_state(self) -> None:
        """Hook: raise a ``ValueError`` when the data state does not fit the model (see :meth:`check_size`)."""

    def check_size(self, option: str, values: Sized | None, what: str) -> None:
        """Raise unless ``len(values)`` (None: unknown, not checked) equals the hyper-parameter ``option``.

        Args:
            option: the hyper-parameter (``vocab_size``, ``num_classes`` ...).
            values: what the data state has (a tokenizer, the labels).
            what: what has that size, for the message (``tokenizer has {} tokens``).
        """
        expected, actual = self.hparams.get(option), None if values is None else len(values)
        if actual is not None and expected is not None and actual != expected:
            raise ValueError(
                f"the model was built for {option}={expected} but the {what.format(actual)}; "
                f"set {option} to {actual} or build both from the same training split"
            )

    def require_tokenizer(self) -> Tokenizer:
        """The tokenizer, or one clear error when the model has none yet."""
        if self.tokenizer is None:
            raise RuntimeError(
                "this model has no tokenizer: load it from a checkpoint or pretrained model, or fit it first"
            )
        return self.tokenizer

    # Training, and metrics declared once, cloned per stage, reset and logged here.

    def stage_metrics(self, **metrics: Metric) -> nn.ModuleDict:
        """``{stage: MetricCollection}`` of ``loss`` (a weighted mean) and ``metrics``, one clone per stage.

        A metric that was not updated in an epoch (e.g. BLEU of a character model) is not logged.
        """
        collection = MetricCollection({"loss": MeanMetric(), **metrics}, compute_groups=False)
        return nn.ModuleDict({stage: collection.clone(prefix=f"{stage}_") for stage in STAGES})

    def training_loss(self, batch: Any) -> Tensor:
        """Hook: the loss of one training batch."""
        raise NotImplementedError

    def evaluate(self, batch: Any, stage: str) -> None:
        """Hook: update ``self.metrics[stage]`` (its ``loss`` and the task's metrics) with one batch."""
        raise NotImplementedError

    def derived_metrics(self, stage: str, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Hook: figures computed from the epoch's metrics (e.g. perplexity from the loss)."""
        return {}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The training loss, logged as ``train_loss``.

        Raises:
            RuntimeError: when the loss is NaN or infinite: the run stops before its weights do.
        """
        loss = self.training_loss(batch)
        self.watch_loss(loss.detach(), batch_idx)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def watch_loss(self, loss: Tensor, batch_idx: int) -> None:
        """Stop the run at a NaN or infinite training loss, before its weights or a checkpoint take it.

        On the CPU every step is checked (free). Elsewhere reading the loss waits for the device, so
        the steps' results are gathered on it and read every :data:`LOSS_CHECK_EVERY` steps and
        before every checkpoint (:meth:`check_losses`): no checkpoint of a diverged run is written.

        Raises:
            RuntimeError: naming the step, and what to change.
        """
        finite = torch.isfinite(loss)
        if loss.device.type == "cpu":
            if not bool(finite):
                where = f"is {loss.item()} at step {self.global_step} (batch {batch_idx} of epoch {self.current_epoch})"
                raise RuntimeError(non_finite_loss_message(where))
            return
        self._losses_finite = finite if self._losses_finite is None else self._losses_finite & finite
        if self.global_step % LOSS_CHECK_EVERY == 0:
            self.check_losses()

    def check_losses(self) -> None:
        """Raise if a training loss gathered since the last check was NaN or infinite (see :meth:`watch_loss`)."""
        finite, self._losses_finite = self._losses_finite, None
        if finite is not None and not bool(finite):
            raise RuntimeError(non_finite_loss_message(f"turned NaN or infinite by step {self.global_step}"))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Accumulate the validation metrics."""
        self.evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """Accumulate the test metrics."""
        self.evaluate(batch, "test")

    def on_validation_epoch_start(self) -> None:
        """Fresh metric state (made in this loop's grad mode: a standalone validate runs in inference mode)."""
        self.metrics["val"].reset()

    def on_test_epoch_start(self) -> None:
        """Fresh metric state."""
        self.metrics["test"].reset()

    def on_validation_epoch_end(self) -> None:
        """Log the validation metrics."""
        self.log_stage("val")

    def on_test_epoch_end(self) -> None:
        """Log the test metrics."""
        self.log_stage("test")

    def log_stage(self, stage: str) -> None:
        """Compute, log and reset the metrics of ``stage`` (those updated this epoch)."""
        values: dict[str, Tensor] = {}
        for name, metric in self.metrics[stage].items():
            if metric.update_count == 0:
                continue
            value = metric.compute()
            if isinstance(value, dict):  # e.g. entity precision, recall and F1
                values.update({f"{stage}_{key}": item for key, item in value.items()})
            else:
                values[name] = value
        values.update(self.derived_metrics(stage, values))
        self.log_dict(values, prog_bar=True)
        self.metrics[stage].reset()

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Log the global L2 norm of the gradients, before any clipping."""
        parameters = [p for p in self.parameters() if p.grad is not None]
        if parameters:  # a tensor: Lightning calls .item() only when it writes the logs, not every step
            self.log("grad_norm", global_grad_norm(parameters))

    def configure_optimizers(self) -> Any:
        """Build the injected optimizer and scheduler."""
        parameters = [p for p in self.parameters() if p.requires_grad]
        optimizer = (
            self.optimizer_factory(parameters) if self.optimizer_factory else torch.optim.AdamW(parameters, lr=1e-3)
        )
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.build_scheduler(optimizer)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config = {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch"}
        else:
            config = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": config}

    def build_scheduler(self, optimizer: Optimizer) -> Any:
        """The injected scheduler; a ``OneCycleLR`` given no length gets the run's (``estimated_stepping_batches``).

        Raises:
            ValueError: for a one-cycle schedule given no length in a run of unknown length.
        """
        assert self.scheduler_factory is not None
        built, options = factory_target(self.scheduler_factory)
        unsized = all(options.get(name) is None for name in ("total_steps", "epochs", "steps_per_epoch"))
        if built is not None and issubclass(built, OneCycleLR) and unsized:
            return self.scheduler_factory(optimizer, total_steps=self.run_steps("OneCycleLR needs its total_steps"))
        return self.scheduler_factory(optimizer)

    def run_steps(self, why: str) -> int:
        """The optimizer steps this run will take (``trainer.estimated_stepping_batches``).

        Raises:
            ValueError: naming ``why`` when the run has no known length (only ``max_time``, or endless data).
        """
        steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(steps):
            raise ValueError(f"{why}, but this run has no known length: set trainer.max_steps or max_epochs")
        return int(steps)

    def on_train_start(self) -> None:
        """Resume the random generators of a resumed run; refuse a one-cycle schedule shorter than the run."""
        rng, self._resumed_rng = self._resumed_rng, None
        if rng is not None and self.trainer.ckpt_path is not None:
            set_rng_states(rng)
        self.check_schedule_length()

    def check_schedule_length(self) -> None:
        """Refuse, before the first step, a one-cycle schedule shorter than the run (it would stop the run midway)."""
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if isinstance(scheduler, OneCycleLR) and config.interval == "step":
                steps = self.run_steps("the one-cycle schedule must cover the whole run")
                if scheduler.total_steps < steps:
                    raise ValueError(
                        f"OneCycleLR's total_steps ({scheduler.total_steps}) is shorter than this run ({steps} "
                        "optimizer steps), which would stop it at step "
                        f"{scheduler.total_steps + 1}: drop total_steps from the scheduler (rnnzoo derives it from "
                        f"the run) or set it to at least {steps}"
                    )

    # One inference API: predict() from Python, predict_step() under a Trainer, the CLI and serving.

    @contextmanager
    def inference(self) -> Iterator[RNNTask]:
        """Eval mode without gradients for the block; the previous mode is restored after it."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield self
        finally:
            self.train(was_training)

    def predict(self, inputs: Any, **options: Any) -> list[dict[str, Any]]:
        """Predict from raw inputs: one JSON-able dict per input, in order.

        Args:
            inputs: one input or a list of them (texts, sentences, conditions, frame
                sequences: what the task reads; see its :meth:`encode_inputs`).
            **options: the task's prediction options (see :meth:`option_names`).

        Raises:
            ValueError: for an unknown option or an input the task cannot read.
        """
        unknown = sorted(set(options) - set(self.option_names()))
        if unknown:
            raise ValueError(
                f"unknown option(s) {unknown} for a {type(self).__name__}; its options are {self.option_names()}"
            )
        items = self.input_list(inputs)
        if not items:
            return []
        with self.inference():
            batch = self.encode_inputs(items, **options)
            if self.device.type != "cpu":  # inputs are made on the CPU; walking a tagger's word lists cost 17%
                batch = self.transfer_batch_to_device(batch, self.device, 0)
            return self.predict_batch(batch, **options)

    def input_list(self, inputs: Any) -> list[Any]:
        """Hook: ``inputs`` as a list of inputs (here one string is one input; lists and tuples are lists)."""
        return [inputs] if isinstance(inputs, str) else list(inputs)

    def option_names(self) -> list[str]:
        """The keyword options :meth:`predict` takes: those of :meth:`encode_inputs` and :meth:`predict_batch`."""
        names = []
        for hook in (self.encode_inputs, self.predict_batch):
            parameters = inspect.signature(hook).parameters.values()
            names += [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
        return sorted(set(names))

    def encode_inputs(self, inputs: list[Any], **options: Any) -> Any:
        """Hook: a batch (of the data modules' batch type) from a list of raw inputs, with clear input errors."""
        raise NotImplementedError

    def predict_batch(self, batch: Any, **options: Any) -> list[dict[str, Any]]:
        """Hook: one output dict per row of ``batch`` (a raw-input batch or one of the data module's)."""
        raise NotImplementedError

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        """:meth:`predict_batch` on one batch of a data module's ``predict_dataloader``."""
        return self.predict_batch(batch)

    # Checkpoints carry the data state; artifacts too (save_pretrained and push_to_hub from ModelHubMixin).

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the data state, the task class and the format version with the weights (never of a diverged run)."""
        self.check_losses()
        if "hyper_parameters" in checkpoint:
            checkpoint["hyper_parameters"] = own_options(type(self), checkpoint["hyper_parameters"])
        checkpoint["rnnzoo"] = {
            "format": FORMAT,
            "version": __version__,
            "task": class_path(type(self)),
            "data_state": self.data_state.to_dict(),
            "rng": rng_states(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the data state; refuse checkpoints from a newer, unknown format.

        The random generators' states are kept for :meth:`on_train_start`, which restores them
        when the checkpoint resumes a run (``fit --ckpt_path``), and only then.
        """
        stored = checkpoint.get("rnnzoo", {})
        check_format(stored.get("format"), "this checkpoint", stored.get("version"))
        self.data_state = DataState.from_dict(stored.get("data_state", stored))  # format 1 kept the fields flat
        self._resumed_rng = stored.get("rng")

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write ``model.safetensors``, ``tokenizer.json`` and ``config.json`` (called by ``save_pretrained``)."""
        from rnnzoo.hub.artifact import CARD, write_artifact

        (Path(save_directory) / CARD).unlink(missing_ok=True)  # the mixin keeps an existing card; ours must be fresh
        write_artifact(self, save_directory)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card (``README.md``) of :meth:`save_pretrained`.

        Pass ``model_card_kwargs`` such as ``dataset``, ``recipe``, ``command``,
        ``metrics`` (name -> value) and ``data_license`` to ``save_pretrained``.
        """
        metrics = kwargs.pop("metrics", None) or {}
        rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
        table = f"| metric | value |\n|---|---|\n{rows}" if metrics else "Not measured."
        defaults = {
            "name": kwargs.get("name", type(self).__name__),
            "task": type(self).__name__,
            "summary": f"cell {self.hparams.get('cell') or self.hparams.get('encoder_cell')}, "
            f"hidden size {self.hparams.get('hidden_size')}",
            "num_params": f"{sum(p.numel() for p in self.parameters()):,}",
            "metrics_table": table,
            "vectors": vectors_summary(self.data_state.options.get("embeddings")),
            "source": kwargs.get("name", "path/to/this/folder"),
        }
        return super().generate_model_card(*args, **{**defaults, **kwargs})

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike, *, revision: str | None = None, map_location: str = "cpu", **_: Any
    ) -> RNNTask:
        """Load a pretrained task: a bundled zoo name, an artifact folder or a HuggingFace hub repo id.

        Every file is checked against its recorded sha256. Called on :class:`RNNTask`
        it returns whatever task the artifact holds; on a task class, it checks the kind (a
        subclass of the stored task, with its own hooks, loads the stored weights).
        """
        from rnnzoo.hub.artifact import read_artifact, resolve  # on call: tasks and hub never import each other at load

        return read_artifact(resolve(source, revision), expected=cls, map_location=map_location)


def factory_target(factory: Callable[..., Any]) -> tuple[type | None, dict[str, Any]]:
    """The class an optimizer or scheduler factory builds and the keyword arguments it holds.

    Reads classes and ``functools.partial`` objects (what the command line makes); ``(None, {})``
    for other callables, whose result is only checked once built.
    """
    if isinstance(factory, type):
        return factory, {}
    if isinstance(factory, functools.partial):
        built = next((item for item in (factory.func, *factory.args) if isinstance(item, type)), None)
        return built, dict(factory.keywords)
    return None, {}


def non_finite_loss_message(where: str) -> str:
    """The message of a run stopped by a NaN or infinite loss (``where``: what the loss did, and when)."""
    return (
        f"the training loss {where}: the run stops, and writes no checkpoint of it (those written are from before). "
        "Lower the learning rate, clip gradients (trainer.gradient_clip_val) or check the data for NaN or inf"
    )


def data_state_of(datamodule: Any) -> DataState:
    """A data module's :class:`DataState`: its ``data_state()``, or, for other data modules, their attributes.

    A LightningDataModule of your own needs no ``data_state()``: its ``tokenizer``,
    ``char_tokenizer``, ``labels`` and ``label_names`` attributes are read when present.
    """
    if hasattr(datamodule, "data_state"):
        return datamodule.data_state()
    return DataState(
        tokenizer=getattr(datamodule, "tokenizer", None),
        char_tokenizer=getattr(datamodule, "char_tokenizer", None),
        labels=getattr(datamodule, "labels", None),
        label_names=getattr(datamodule, "label_names", None),
    )


def vectors_summary(record: dict[str, Any] | None) -> str | None:
    """One line about the pretrained vectors a model started from (its ``data_state.options["embeddings"]``)."""
    if not record:
        return None
    coverage = record.get("coverage", {})
    covered = coverage.get("exact", 0) + coverage.get("lowercased", 0)
    looked_up = covered + coverage.get("missing", 0)
    frozen = ", frozen" if record.get("frozen") else ""
    return (
        f"`{record.get('file')}` ({record.get('dim')} dimensions; {covered:,} of {looked_up:,} words covered{frozen})"
    )


def perplexity(loss: Tensor) -> Tensor:
    """``exp(loss)`` of a loss in nats per token."""
    return torch.exp(loss)


def bits(loss: Tensor) -> Tensor:
    """A loss in nats as bits."""
    return loss / math.log(2)


def own_options(task_class: type, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the names ``task_class.__init__`` does not take (Lightning's ``_class_path`` ... kept).

    LightningCLI records the targets of the data-to-model links (``vocab_size``, ``frame_size`` ...)
    for every task, also one that lacks them (``SequencePredictor`` has no ``vocab_size``), and
    ``rnnzoo test --ckpt_path`` parses the stored options again, refusing such a name.
    """
    parameters = inspect.signature(task_class.__init__).parameters
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        return options
    return {name: value for name, value in options.items() if name in parameters or name.startswith("_")}


def load_task(ckpt_path: str | os.PathLike, map_location: str | torch.device = "cpu") -> RNNTask:
    """Load any rnnzoo task from a Lightning checkpoint, its data state included.

    The task class is read from the checkpoint, so callers need not know it. The file is read as
    plain data only (``weights_only=True``): a crafted checkpoint cannot run code here.

    Raises:
        FileNotFoundError: when there is no file at ``ckpt_path``.
        ValueError: for a file that is not a readable rnnzoo checkpoint (see :func:`read_checkpoint`).
    """
    checkpoint = read_checkpoint(ckpt_path)
    task = checkpoint.get("rnnzoo", {}).get("task")
    if not isinstance(task, str):
        raise ValueError(f"{str(ckpt_path)!r} is not an rnnzoo checkpoint (it names no rnnzoo task)")
    task_class = import_class(task)
    if not (isinstance(task_class, type) and issubclass(task_class, RNNTask)):
        raise ValueError(f"{str(ckpt_path)!r} names {task!r}, which is not an rnnzoo task")
    return task_class.load_from_checkpoint(ckpt_path, map_location=map_location, weights_only=True)
