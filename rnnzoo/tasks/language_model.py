"""Character-level (or word-level) language model trained with truncated BPTT.

The model reads one token at a time, h_t = f_W(h_{t-1}, x_t), and predicts the
next one from h_t. Training follows the seed recipe:

* h_0 = 0 at the start of every stream (each epoch, each evaluation).
* Truncated backpropagation through time: each batch is the next chunk of
  ``tbptt_steps`` tokens of every stream; the hidden state is carried from chunk
  to chunk, *detached*, so gradients flow through at most one chunk while the
  model still sees all the context before it.
* Sampling starts again from h_0 = 0, feeds the prompt through ``step`` and
  draws one token at a time (:mod:`rnnzoo.decoding`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric

from rnnzoo import decoding
from rnnzoo.cells import State, map_state
from rnnzoo.tasks.base import RNNTask


class LanguageModel(RNNTask):
    """Embedding -> recurrent backbone -> projection to the vocabulary.

    Logs ``train_loss``, ``grad_norm``, and for validation and test the
    cross-entropy in nats per token (``val_loss``), perplexity (``val_ppl``) and
    bits per token (``val_bpc``: bits per character for a char-level model).

    Args:
        vocab_size: number of tokens (linked from the data module by the CLI).
        cell: a registered cell name (``lstm``, ``gru``, ``rnn``, ``reference_lstm`` ...).
        hidden_size: hidden features of the backbone.
        num_layers: stacked recurrent layers.
        dropout: on the embeddings, between layers and before the projection.
        embedding_size: defaults to ``hidden_size``.
        tie_weights: share the embedding and output matrices (needs
            ``embedding_size == hidden_size``).
        cell_options: extra options of the cell (e.g. ``{nonlinearity: relu}`` for ``rnn``).
        optimizer: see :class:`~rnnzoo.tasks.RNNTask`.
        scheduler: see :class:`~rnnzoo.tasks.RNNTask`.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        hidden_size: int = 512,
        num_layers: int = 2,
        dropout: float = 0.2,
        embedding_size: int | None = None,
        tie_weights: bool = False,
        cell_options: dict[str, Any] | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be a positive integer, got {vocab_size}")
        embedding_size = embedding_size or hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.backbone = self.build_backbone(
            cell, embedding_size, hidden_size, num_layers=num_layers, dropout=dropout, **(cell_options or {})
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.output_size, vocab_size)
        if tie_weights:
            if self.backbone.output_size != embedding_size:
                raise ValueError(
                    f"tie_weights needs embedding_size ({embedding_size}) == hidden_size ({self.backbone.output_size})"
                )
            self.head.weight = self.embedding.weight
        self.nll = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.carried_states: dict[str, State | None] = {}

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``tokens [B, T]`` and a state (None: h_0 = 0) -> ``(logits [B, T, V], final state)``."""
        outputs, state = self.backbone(self.dropout(self.embedding(tokens)), None, state)
        return self.head(self.dropout(outputs)), state

    def step(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One token per row: ``tokens [B]`` -> ``(logits [B, V], state)`` (the decoding step)."""
        output, state = self.backbone.step(self.dropout(self.embedding(tokens)), state)
        return self.head(self.dropout(output)), state

    # Truncated BPTT: every stage keeps the state its last chunk ended with.

    def carried_state(self, stage: str, batch_size: int) -> State | None:
        """The state the previous chunk of ``stage`` ended with, or None (h_0 = 0) at a stream's start."""
        state = self.carried_states.get(stage)
        first = state[0] if isinstance(state, tuple) else state
        if first is None or first.shape[1] != batch_size:
            return None
        return state

    def _chunk_loss(self, batch: tuple[Tensor, Tensor], stage: str) -> tuple[Tensor, Tensor]:
        inputs, targets = batch
        logits, state = self(inputs, self.carried_state(stage, inputs.shape[0]))
        # Detach: the next chunk starts from this state but does not backpropagate into this one.
        self.carried_states[stage] = map_state(Tensor.detach, state)
        losses = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
        return losses.mean(), losses.view_as(targets)

    def on_train_epoch_start(self) -> None:
        """Each epoch reads the streams from their start, from h_0 = 0."""
        self.carried_states["train"] = None

    def reset_metrics(self, stage: str) -> None:
        """Validation and test read their streams from h_0 = 0, with a fresh loss sum."""
        self.carried_states[stage] = None
        self.nll[stage].reset()

    def on_predict_epoch_start(self) -> None:
        """Scoring reads its streams from h_0 = 0."""
        self.carried_states["predict"] = None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Cross-entropy of one TBPTT chunk."""
        loss, _ = self._chunk_loss(batch, "train")
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Accumulate the per-token loss of one chunk."""
        loss, _ = self._chunk_loss(batch, "val")
        self.nll["val"].update(loss, weight=batch[1].numel())

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Accumulate the per-token loss of one chunk."""
        loss, _ = self._chunk_loss(batch, "test")
        self.nll["test"].update(loss, weight=batch[1].numel())

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Per-token negative log-likelihood in nats, ``[B, t]``, of one chunk."""
        return self._chunk_loss(batch, "predict")[1]

    def log_metrics(self, stage: str) -> None:
        """Log ``{stage}_loss`` (nats/token), ``{stage}_ppl`` and ``{stage}_bpc``."""
        nll = self.nll[stage].compute()
        self.nll[stage].reset()
        self.log(f"{stage}_loss", nll, prog_bar=True)
        self.log(f"{stage}_ppl", torch.exp(nll))
        self.log(f"{stage}_bpc", nll / math.log(2))

    def check_tokenizer(self) -> None:
        """The tokenizer must have exactly ``vocab_size`` entries."""
        if self.tokenizer is not None and len(self.tokenizer) != self.hparams.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(self.tokenizer)} tokens but the model was built for "
                f"vocab_size={self.hparams.vocab_size}; build both from the same training split"
            )

    @torch.no_grad()
    def generate(
        self,
        prompt: str = "\n",
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> str:
        """Continue ``prompt``: start from h_0 = 0, read the prompt through ``step``, then sample.

        Args:
            prompt: text to continue; every character must be in the vocabulary
                (or the tokenizer must have an ``unk_token``).
            max_new_tokens: how many tokens to add.
            temperature: below 1 is more conservative, 0 is greedy.
            top_k: sample among the ``k`` most likely tokens only.
            seed: seed for reproducible samples.

        Returns:
            The prompt followed by the generated text.
        """
        if self.tokenizer is None:
            raise RuntimeError(
                "this model has no tokenizer: load it from a checkpoint, or fit it with a data module first"
            )
        if not prompt:
            raise ValueError('the prompt is empty: give at least one character, e.g. "\\n"')
        try:
            ids = self.tokenizer.encode(prompt).to(self.device)
        except ValueError as error:
            raise ValueError(f"the prompt holds {error}") from None
        was_training = self.training
        self.eval()
        try:
            state = None  # h_0 = 0
            for token in ids:
                logits, state = self.step(token.view(1), state)
            generator = None
            if seed is not None:
                generator = torch.Generator(device=self.device).manual_seed(seed)
            new = decoding.sample(self.step, logits, state, max_new_tokens, temperature, top_k, generator)
        finally:
            self.train(was_training)
        return prompt + self.tokenizer.decode(new[0])
