"""One-to-many: a single input (a category, a feature vector or an image) and a sequence out.

An encoder turns the condition into a vector ``z``:

* ``condition: category``: an embedding of the category index (names by language);
* ``vector``: a linear projection of a precomputed feature vector;
* ``image``: a small built-in CNN (three conv / ReLU / max-pool blocks); ``z`` is
  a linear projection of its whole feature map (positions kept; a mean over the
  map would lose where things are), whose cells attention can also read.

The decoder (any registered cell) writes the sequence one token at a time, and
``conditioning`` says how ``z`` reaches it:

* ``init_state`` (Show and Tell, Vinyals et al. 2015): ``z`` is projected into the
  decoder's first state, ``h_0 = tanh(W_h z)`` (and ``c_0 = tanh(W_c z)`` for LSTM);
* ``first_input`` (the classic "one-to-many" seed): ``z`` is concatenated to the
  token embedding at the first step and zeros take its place afterwards.

With ``attention`` (image condition only) every decoder output attends over the
CNN's spatial features (:mod:`rnnzoo.attention`) and ``tanh(W [h_t; c_t])`` feeds the
output layer, as Show, Attend and Tell does with soft attention (the context is
read after the step, Luong-style, so teacher forcing runs in one call). Training
reads the reference (teacher forcing); generation (greedy, sampling, beam search)
goes through :mod:`rnnzoo.decoding` with :meth:`Captioner.step`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.text import SacreBLEUScore

from rnnzoo import decoding
from rnnzoo.attention import Attention
from rnnzoo.batches import CaptionBatch
from rnnzoo.images import load_image, prepare_image
from rnnzoo.tasks.base import RNNTask
from rnnzoo.tokenizers import TextTokenizer, special_ids

ConditionKind = Literal["category", "vector", "image"]
Conditioning = Literal["init_state", "first_input"]


class SmallCNN(nn.Module):
    """Three ``conv 3x3 -> batch norm -> ReLU -> max-pool 2`` blocks: ``[B, C, H, W] -> [B, channels, H/8, W/8]``.

    Args:
        in_channels: channels of the input images.
        channels: channels of every block.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for block in range(3):
            conv = nn.Conv2d(in_channels if block == 0 else channels, channels, 3, padding=1)
            blocks += [conv, nn.BatchNorm2d(channels), nn.ReLU()]
            blocks.append(nn.MaxPool2d(2))
        self.layers = nn.Sequential(*blocks)

    def forward(self, images: Tensor) -> Tensor:
        """Spatial feature maps of ``images``."""
        return self.layers(images)


class Captioner(RNNTask):
    """Condition encoder -> recurrent decoder, trained with teacher forcing, decoded by :mod:`rnnzoo.decoding`.

    Logs ``train_loss``, ``grad_norm``, and for validation and test ``*_loss``
    (cross-entropy in nats per target token, the end token counted: per
    character for a character vocabulary), ``*_ppl``, and with a word vocabulary
    ``*_bleu`` (corpus BLEU-4, 0-100, against every reference) and ``*_exact``
    (share of generated captions equal to one of the references).

    Args:
        vocab_size: tokens of the output vocabulary (linked from the data module by the CLI).
        condition: ``category``, ``vector`` or ``image`` (see the module docstring).
        num_categories: categories of a ``category`` condition; checked against the data at ``setup()``.
        feature_size: features of a ``vector`` condition.
        image_channels: channels of an ``image`` condition (3 for RGB).
        image_size: side images are resized to at inference (as the data module does).
        cnn_channels: channels of the built-in CNN.
        conditioning: ``init_state`` or ``first_input``.
        attention: attend over the CNN's spatial features (``image`` only).
        cell: a registered cell name for the decoder.
        embedding_size: features of the token embedding.
        condition_size: features of ``z`` (default: ``hidden_size``).
        hidden_size: hidden features of the decoder.
        num_layers: stacked decoder layers.
        dropout: on embeddings, between layers and before the output layer.
        val_beam_size: beam for validation BLEU (1: greedy).
        test_beam_size: beam for test BLEU.
        length_penalty: GNMT alpha of beam search.
        max_decode_length: most tokens generated, end token included.
        cell_options: extra options of the decoder cell.
        optimizer: see :class:`~rnnzoo.tasks.RNNTask`.
        scheduler: see :class:`~rnnzoo.tasks.RNNTask`.
    """

    def __init__(
        self,
        vocab_size: int,
        condition: ConditionKind = "category",
        num_categories: int | None = None,
        feature_size: int | None = None,
        image_channels: int = 3,
        image_size: int = 32,
        cnn_channels: int = 32,
        conditioning: Conditioning = "init_state",
        attention: bool = False,
        cell: str = "lstm",
        embedding_size: int = 64,
        condition_size: int | None = None,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        val_beam_size: int = 1,
        test_beam_size: int = 3,
        length_penalty: float = 0.0,
        max_decode_length: int = 30,
        cell_options: dict[str, Any] | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if vocab_size <= 3:
            raise ValueError(f"vocab_size must exceed the 3 special tokens, got {vocab_size}")
        if conditioning not in ("init_state", "first_input"):
            raise ValueError(f"conditioning must be 'init_state' or 'first_input', got {conditioning!r}")
        if attention and condition != "image":
            raise ValueError(f"attention reads spatial image features: it needs condition='image', not {condition!r}")
        condition_size = condition_size or hidden_size
        self.cnn: SmallCNN | None = None
        if condition == "category":
            if not num_categories or num_categories < 1:
                raise ValueError(f"condition='category' needs num_categories >= 1, got {num_categories!r}")
            self.encoder: nn.Module = nn.Embedding(num_categories, condition_size)
        elif condition == "vector":
            if not feature_size or feature_size < 1:
                raise ValueError(f"condition='vector' needs feature_size >= 1, got {feature_size!r}")
            self.encoder = nn.Linear(feature_size, condition_size)
        elif condition == "image":
            if image_size < 8:
                raise ValueError(f"image_size must be at least 8 (the CNN halves it three times), got {image_size}")
            self.cnn = SmallCNN(image_channels, cnn_channels)
            self.encoder = nn.Linear(cnn_channels * (image_size // 8) ** 2, condition_size)
        else:
            raise ValueError(f"condition must be 'category', 'vector' or 'image', got {condition!r}")
        # Features of images and vectors can be large: normalised, z does not saturate the tanh of init_state.
        self.norm = nn.LayerNorm(condition_size) if condition != "category" else nn.Identity()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        first_input = conditioning == "first_input"
        self.decoder = self.build_backbone(
            cell,
            embedding_size + (condition_size if first_input else 0),
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            **(cell_options or {}),
        )
        state = self.decoder.initial_state(1)
        self._state_tensors = 1 if isinstance(state, Tensor) else len(state)
        self.bridge = None
        if not first_input:
            self.bridge = nn.Linear(condition_size, self._state_tensors * num_layers * hidden_size)
        self.attention = Attention("additive", hidden_size, cnn_channels) if attention else None
        self.combine = nn.Linear(hidden_size + cnn_channels, hidden_size) if attention else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.categories: list[str] | None = None
        self.losses = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.exact = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.bleu = nn.ModuleDict({stage: SacreBLEUScore(n_gram=4, tokenize="none") for stage in ("val", "test")})

    # The model.

    def encode(self, condition: Tensor) -> dict[str, Any]:
        """The decoder's first state for a batch of conditions (see :class:`CaptionBatch` for shapes).

        Raises:
            ValueError: for a condition of the wrong shape (e.g. the wrong number of image channels).
        """
        hp = self.hparams
        memory = None
        if hp.condition == "category":
            if condition.dim() != 1 or condition.dtype != torch.long:
                raise ValueError(
                    f"category conditions are [batch] int64 indices, got {condition.dtype} {list(condition.shape)}"
                )
            z = self.encoder(condition)
        elif hp.condition == "vector":
            if condition.dim() != 2 or condition.shape[1] != hp.feature_size:
                raise ValueError(
                    f"vector conditions must have shape [batch, {hp.feature_size}], got {list(condition.shape)}"
                )
            z = self.encoder(condition.float())
        else:
            if condition.dim() != 4 or condition.shape[1] != hp.image_channels:
                raise ValueError(
                    f"images must have shape [batch, {hp.image_channels}, height, width], got {list(condition.shape)}: "
                    f"the model reads {hp.image_channels}-channel images"
                )
            if tuple(condition.shape[2:]) != (hp.image_size, hp.image_size):
                raise ValueError(
                    f"images must be {hp.image_size}x{hp.image_size} (image_size), got {list(condition.shape[2:])}; "
                    "resize them with rnnzoo.data.captioning.prepare_image"
                )
            maps = self.cnn(condition.float())  # [B, C, H/8, W/8]
            memory = maps.flatten(2).transpose(1, 2)  # [B, S, C]: what attention reads
            z = self.encoder(maps.flatten(1))  # the whole map, so where things are survives
        z = self.norm(z)
        batch = z.shape[0]
        state: dict[str, Any] = {}
        if self.bridge is None:
            rnn = self.decoder.initial_state(batch, z.device, z.dtype)
            state["feed"] = z
        else:
            parts = torch.tanh(self.bridge(z)).view(batch, self._state_tensors, hp.num_layers, hp.hidden_size)
            tensors = tuple(parts[:, k].transpose(0, 1).contiguous() for k in range(self._state_tensors))
            rnn = tensors[0] if self._state_tensors == 1 else tensors
        state["rnn"] = rnn
        if self.attention is not None:
            state.update(memory=memory, keys=self.attention.keys(memory))
        return state

    def decode(self, tokens: Tensor, state: dict[str, Any], lengths: Tensor | None = None) -> tuple[Tensor, dict]:
        """Decode ``tokens [B, T]`` from ``state``: ``(logits [B, T, V], state)``.

        With ``first_input`` the state's ``feed`` (``z`` before the first step, zeros
        after) joins the first token's embedding; later tokens get zeros.
        """
        inputs = self.dropout(self.embedding(tokens))
        state = dict(state)
        if "feed" in state:
            feed = torch.zeros(*inputs.shape[:2], state["feed"].shape[-1], dtype=inputs.dtype, device=inputs.device)
            feed[:, 0] = state["feed"]
            inputs = torch.cat([inputs, feed], dim=-1)
            state["feed"] = torch.zeros_like(state["feed"])
        outputs, state["rnn"] = self.decoder(inputs, lengths, state["rnn"])
        if self.attention is not None:
            mask = torch.ones(state["memory"].shape[:2], dtype=torch.bool, device=outputs.device)
            contexts, _ = self.attention(outputs, state["memory"], state["keys"], mask)
            outputs = torch.tanh(self.combine(torch.cat([outputs, contexts], dim=-1)))
        return self.head(self.dropout(outputs)), state

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One token per row: ``tokens [B]`` -> ``(logits [B, V], state)`` (the decoding step).

        ``<pad>`` and ``<bos>`` are never targets, so generation never picks them (their logits are -inf).
        """
        logits, state = self.decode(tokens.unsqueeze(1), state)
        pad_id, bos_id, _ = special_ids(self.tokenizer) if self.tokenizer is not None else (0, None, None)
        never = [pad_id] if bos_id is None else [pad_id, bos_id]
        return logits.squeeze(1).index_fill(1, torch.tensor(never, device=logits.device), float("-inf")), state

    @staticmethod
    def reorder_state(state: dict[str, Any], indices: Tensor) -> dict[str, Any]:
        """Rows ``indices`` of a decoder state (beam search): the backbone state has the batch on dim 1."""
        return {
            key: decoding.backbone_reorder(value, indices)
            if key == "rnn"
            else decoding.index_select_state(value, indices)
            for key, value in state.items()
        }

    def forward(self, condition: Tensor, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits ``[B, T, V]`` of the next token at every position of ``tokens [B, T]`` (teacher forcing).

        Args:
            condition: a batch of conditions (see :class:`CaptionBatch`).
            tokens: ``<bos> y_1 ... y_{T-1}`` (padded).
            lengths: real lengths of ``tokens`` (None: no padding).
        """
        return self.decode(tokens, self.encode(condition), lengths)[0]

    # Training and evaluation.

    def _loss(self, batch: CaptionBatch) -> tuple[Tensor, int]:
        inputs, targets = batch.tokens[:, :-1], batch.tokens[:, 1:]
        logits = self(batch.condition, inputs, batch.lengths - 1)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=0)
        return loss, int((targets != 0).sum())

    def training_step(self, batch: CaptionBatch, batch_idx: int) -> Tensor:
        """Cross-entropy per target token (padding ignored)."""
        loss, _ = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: CaptionBatch, stage: str) -> None:
        loss, tokens = self._loss(batch)
        self.losses[stage].update(loss, weight=tokens)
        if not isinstance(self.tokenizer, TextTokenizer):
            return
        beam = self.hparams.val_beam_size if stage == "val" else self.hparams.test_beam_size
        hypotheses = [row[0] for row in self.decode_ids(batch.condition, beam_size=beam)]
        texts = [" ".join(self.tokenizer.id_to_token(i) for i in h.tokens.tolist()) for h in hypotheses]
        references = [[" ".join(self.tokenizer.words(r)) for r in refs] for refs in batch.references]
        self.bleu[stage].update(texts, references)
        self.exact[stage].update(torch.tensor([float(t in refs) for t, refs in zip(texts, references, strict=True)]))

    def validation_step(self, batch: CaptionBatch, batch_idx: int) -> None:
        """Accumulate loss (and BLEU / exact match for word vocabularies)."""
        self._evaluate(batch, "val")

    def test_step(self, batch: CaptionBatch, batch_idx: int) -> None:
        """Accumulate loss (and BLEU / exact match for word vocabularies)."""
        self._evaluate(batch, "test")

    def on_validation_epoch_start(self) -> None:
        """Fresh metric state."""
        self._reset("val")

    def on_test_epoch_start(self) -> None:
        """Fresh metric state."""
        self._reset("test")

    def _reset(self, stage: str) -> None:
        for metrics in (self.losses, self.exact, self.bleu):
            metrics[stage].reset()

    def on_validation_epoch_end(self) -> None:
        """Log val_loss, val_ppl (and val_bleu, val_exact)."""
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        """Log test_loss, test_ppl (and test_bleu, test_exact)."""
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        loss = self.losses[stage].compute()
        self.log(f"{stage}_loss", loss, prog_bar=True)
        self.log(f"{stage}_ppl", torch.exp(loss))
        if isinstance(self.tokenizer, TextTokenizer):
            self.log(f"{stage}_bleu", 100 * self.bleu[stage].compute(), prog_bar=True)
            self.log(f"{stage}_exact", self.exact[stage].compute())
        self._reset(stage)

    # Tokenizer and categories, from the data module at setup and from checkpoints after.

    def setup(self, stage: str) -> None:
        """Take the tokenizer and the categories from the data module; check they fit the model."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        categories = getattr(datamodule, "categories", None)
        if categories is None or self.hparams.condition != "category":
            return
        if len(categories) != self.hparams.num_categories:
            raise ValueError(
                f"the model was built for num_categories={self.hparams.num_categories} but the data has "
                f"{len(categories)}; set num_categories to {len(categories)}"
            )
        if self.categories is None:
            self.categories = list(categories)
        elif list(categories) != self.categories:
            raise ValueError(
                f"the data's categories {categories} differ from the model's {self.categories}: use the same data"
            )

    def check_tokenizer(self) -> None:
        """The tokenizer must have ``vocab_size`` entries and start, end and padding ids."""
        if self.tokenizer is None:
            return
        special_ids(self.tokenizer)
        if len(self.tokenizer) != self.hparams.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(self.tokenizer)} tokens but the model was built for "
                f"vocab_size={self.hparams.vocab_size}; build both from the same training split"
            )

    def data_state(self) -> dict[str, Any]:
        """The tokenizer and the categories, saved with the model."""
        return {**super().data_state(), "categories": self.categories}

    def load_data_state(self, state: dict[str, Any]) -> None:
        """Restore the tokenizer and the categories."""
        super().load_data_state(state)
        self.categories = state.get("categories")

    # Inference.

    def condition_tensor(self, conditions: Sequence[Any]) -> Tensor:
        """A batch from raw conditions: category names (or indices), feature vectors, image tensors or image paths.

        Raises:
            KeyError: for an unknown category, listing the known ones.
            ValueError: for an image of the wrong channel count or an unreadable image file.
        """
        hp = self.hparams
        if hp.condition == "category":
            names = self.categories or [str(i) for i in range(hp.num_categories)]
            index = {name: position for position, name in enumerate(names)}
            unknown = [c for c in conditions if not isinstance(c, int) and str(c) not in index]
            if unknown:
                raise KeyError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {unknown}; known: {names}")
            ids = [c if isinstance(c, int) else index[str(c)] for c in conditions]
            bad = [i for i in ids if not 0 <= i < hp.num_categories]
            if bad:
                raise KeyError(f"category indices {bad} are outside [0, {hp.num_categories})")
            return torch.tensor(ids, dtype=torch.long, device=self.device)
        if hp.condition == "vector":
            return torch.stack([torch.as_tensor(c, dtype=torch.float) for c in conditions]).to(self.device)
        images = [load_image(c) if isinstance(c, str | os.PathLike) else torch.as_tensor(c) for c in conditions]
        images = [self._prepare_image(image) for image in images]
        return torch.stack(images).to(self.device)

    def _prepare_image(self, image: Tensor) -> Tensor:
        return prepare_image(image, self.hparams.image_size, self.hparams.image_channels)

    @torch.no_grad()
    def decode_ids(
        self,
        condition: Tensor,
        beam_size: int = 1,
        n_best: int = 1,
        length_penalty: float | None = None,
        max_length: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[list[decoding.Hypothesis]]:
        """Generate from a batch of conditions: greedy (``beam_size=1``), beam search, or sampling.

        Args:
            condition: a batch of conditions (see :class:`CaptionBatch`).
            beam_size: beams per condition; 1 is greedy.
            n_best: hypotheses per condition (beam search).
            length_penalty: GNMT alpha (default: the model's ``length_penalty``).
            max_length: most tokens, end included (default: ``max_decode_length``).
            temperature: sample with this temperature instead of searching (``beam_size`` must be 1).
            top_k: with ``temperature``, sample among the ``k`` most likely tokens.
            generator: with ``temperature``, a seeded generator.

        Returns:
            For every condition, its best hypotheses (ids without ``<bos>``/``<eos>``), best first.
        """
        if self.tokenizer is None:
            raise RuntimeError("this model has no tokenizer: load it from a checkpoint, or fit it first")
        _, bos_id, eos_id = special_ids(self.tokenizer)
        max_length = self.hparams.max_decode_length if max_length is None else max_length
        alpha = self.hparams.length_penalty if length_penalty is None else length_penalty
        was_training = self.training
        self.eval()
        try:
            state = self.encode(condition)
            bos = torch.full((condition.shape[0],), bos_id, dtype=torch.long, device=condition.device)
            logits, state = self.step(bos, state)
            return decoding.decode(
                self.step,
                logits,
                state,
                max_length,
                eos_id,
                beam_size,
                n_best,
                alpha,
                self.reorder_state,
                temperature,
                top_k,
                generator,
            )
        finally:
            self.train(was_training)

    def _text(self, ids: Tensor) -> str:
        if isinstance(self.tokenizer, TextTokenizer):
            return self.tokenizer.detokenize(ids)
        return self.tokenizer.decode(ids)

    @torch.no_grad()
    def generate_n_best(
        self,
        conditions: Any,
        beam_size: int = 1,
        n_best: int = 1,
        temperature: float | None = None,
        top_k: int | None = None,
        seed: int | None = None,
        max_length: int | None = None,
        length_penalty: float | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Generate from raw conditions with the stored tokenizer: ``(text, score)`` pairs, best first.

        See :meth:`generate` for the arguments; greedy and sampled texts have no score (NaN).
        """
        single = isinstance(conditions, str | int | os.PathLike) or (
            isinstance(conditions, Tensor) and conditions.dim() in (1, 3) and self.hparams.condition != "category"
        )
        conditions = [conditions] if single else list(conditions)
        if not conditions:
            return []
        generator = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        hypotheses = self.decode_ids(
            self.condition_tensor(conditions),
            beam_size,
            n_best,
            length_penalty,
            max_length,
            temperature,
            top_k,
            generator,
        )
        return [[(self._text(h.tokens), h.score) for h in row] for row in hypotheses]

    def generate(self, conditions: Any, beam_size: int = 1, **options: Any) -> list[str]:
        """Generate one text per condition in one call.

        Args:
            conditions: one condition or several: category names (``"Russian"``) or indices,
                feature vectors, raw images (``[C, H, W]`` or ``[H, W, C]``, uint8 0-255 or float
                0-1; resized and normalised as the data module does with its default mean/std)
                or image file paths.
            beam_size: beams per condition; 1 is greedy (or sampling with a ``temperature``).
            **options: ``n_best``, ``temperature``, ``top_k``, ``seed``, ``max_length``, ``length_penalty``.

        Raises:
            KeyError: for an unknown category.
            ValueError: for an image of the wrong channel count or an unreadable image file.
        """
        return [row[0][0] for row in self.generate_n_best(conditions, beam_size, **options)]
