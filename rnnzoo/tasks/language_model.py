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

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.batches import PromptBatch, TokenChunk, pad_sequences
from rnnzoo.cells import State
from rnnzoo.decoding import GenerationConfig
from rnnzoo.nn.regularization import LockedDropout, apply_weight_drop, embedding_dropout
from rnnzoo.tasks.base import bits
from rnnzoo.tasks.generative import GenerativeTask
from rnnzoo.tasks.tbptt import TruncatedBPTT


class LanguageModel(TruncatedBPTT, GenerativeTask):
    """Embedding -> recurrent backbone -> projection to the vocabulary.

    Logs ``train_loss``, ``grad_norm``, and for validation and test the
    cross-entropy in nats per token (``val_loss``), perplexity (``val_ppl``) and
    bits per token (``val_bpc``: bits per character for a char-level model).
    :meth:`predict` continues prompts (``{"text": prompt + continuation}``);
    ``predict_step`` over the data module's streams scores them (per-token negative
    log-likelihood in nats, ``{"nll": [...]}`` per row of each chunk).

    Args:
        vocab_size: number of tokens (linked from the data module by the CLI).
        cell: a registered cell name (``lstm``, ``gru``, ``rnn``, ``reference_lstm`` ...).
        hidden_size: hidden features of the backbone.
        num_layers: stacked recurrent layers.
        dropout: on the embeddings, between layers and before the projection.
        embedding_size: defaults to ``hidden_size``.
        tie_weights: share the embedding and output matrices (needs
            ``embedding_size == hidden_size``; not with a projected, joined or frozen table).
        embeddings: a GloVe / word2vec / fastText text file whose vectors fill the embedding
            at the first fit (word-level tokenizers only; see :meth:`~rnnzoo.tasks.RNNTask.load_pretrained_vectors`).
        freeze_embeddings: keep the pretrained table fixed in training.
        vectors_size: the vectors' width when it differs from ``embedding_size``: a trainable
            projection maps them to ``embedding_size``.
        trained_embedding_size: with ``embeddings``, also a trained embedding of this width
            (zeros at first) concatenated to the vectors, as Kim 2014's static and trained
            channels: the backbone reads ``embedding_size + trained_embedding_size`` features.
        cell_options: extra options of the cell (e.g. ``{nonlinearity: relu}`` for ``rnn``).
        locked_dropout: AWD-LSTM's variational dropout: one mask per sequence, the same at every
            step, on the embeddings, between layers and on the outputs (ordinary dropout otherwise).
        input_dropout: dropout on the embeddings (None: ``dropout``).
        output_dropout: dropout on the last layer's outputs (None: ``dropout``).
        embedding_dropout: drop whole words of a batch (rows of the embedding), AWD-LSTM's ``dropoute``.
        weight_drop: DropConnect on the hidden-to-hidden weights (AWD-LSTM's ``wdrop``); torch's
            fused kernel still runs, layer by layer.
        activation_regularization: AR, this times the mean square of the (dropped-out) last-layer
            outputs is added to the training loss (AWD-LSTM's ``alpha``, 2).
        temporal_activation_regularization: TAR, this times the mean square of the change of the
            last-layer outputs from one step to the next (AWD-LSTM's ``beta``, 1).
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
        embeddings: str | None = None,
        freeze_embeddings: bool = False,
        vectors_size: int | None = None,
        trained_embedding_size: int = 0,
        cell_options: dict[str, Any] | None = None,
        locked_dropout: bool = False,
        input_dropout: float | None = None,
        output_dropout: float | None = None,
        embedding_dropout: float = 0.0,
        weight_drop: float = 0.0,
        activation_regularization: float = 0.0,
        temporal_activation_regularization: float = 0.0,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be a positive integer, got {vocab_size}")
        embedding_size = embedding_size or hidden_size
        self.embedding = self.build_embedding(vocab_size, embedding_size)
        self.backbone = self.build_backbone(
            cell,
            self.embedding.output_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            **(cell_options or {}),
        )
        dropout_class = LockedDropout if locked_dropout else nn.Dropout
        self.input_dropout = dropout_class(dropout if input_dropout is None else input_dropout)
        self.output_dropout = dropout_class(dropout if output_dropout is None else output_dropout)
        if locked_dropout:
            self.backbone.dropout = LockedDropout(dropout)
        if weight_drop:
            apply_weight_drop(self.backbone.layers, weight_drop)
        self.head = nn.Linear(self.backbone.output_size, vocab_size)
        if tie_weights:
            if self.backbone.output_size != embedding_size:
                raise ValueError(
                    f"tie_weights needs embedding_size ({embedding_size}) == hidden_size ({self.backbone.output_size})"
                )
            if self.embedding.output_size != self.embedding.embedding_dim or freeze_embeddings:
                raise ValueError(
                    "tie_weights shares the embedding table with the output layer: it cannot be projected "
                    "(vectors_size), joined by a trained table (trained_embedding_size) nor frozen "
                    "(freeze_embeddings would freeze the output layer too)"
                )
            self.head.weight = self.embedding.weight
        self.carried_states: dict[str, State | None] = {}

    def embed(self, tokens: Tensor) -> Tensor:
        """The dropped-out embeddings of ``tokens`` (whole words dropped in training with ``embedding_dropout``)."""
        embedded = self.embedding(tokens)
        if self.training:
            embedded = embedding_dropout(embedded, tokens, self.hparams.vocab_size, self.hparams.embedding_dropout)
        return self.input_dropout(embedded)

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``tokens [B, T]`` and a state (None: h_0 = 0) -> ``(logits [B, T, V], final state)``."""
        logits, _, state = self.read(tokens, state)
        return logits, state

    def read(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, Tensor, State]:
        """:meth:`forward` that also returns the last layer's outputs ``[B, T, H]`` (for AR and TAR)."""
        outputs, state = self.backbone(self.embed(tokens), None, state)
        return self.head(self.output_dropout(outputs)), outputs, state

    def step(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One token per row: ``tokens [B]`` -> ``(logits [B, V], state)`` (the decoding step)."""
        output, state = self.backbone.step(self.embed(tokens), state)
        return self.head(self.output_dropout(output)), state

    # Truncated BPTT (rnnzoo.tasks.tbptt): every stage keeps the state its last chunk ended with.

    def chunk_losses(self, batch: TokenChunk, stage: str) -> Tensor:
        """Per-token cross-entropy ``[B, t]`` of one chunk, read from (and carrying on) ``stage``'s state."""
        return self._read_chunk(batch, stage)[0]

    def _read_chunk(self, batch: TokenChunk, stage: str) -> tuple[Tensor, Tensor]:
        inputs, targets = batch
        logits, outputs, state = self.read(inputs, self.carried_state(stage, inputs.shape[0]))
        self.carry(stage, state)  # detached: the next chunk does not backpropagate into this one
        losses = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
        return losses.view_as(targets), outputs

    def training_loss(self, batch: TokenChunk) -> Tensor:
        """Cross-entropy of one TBPTT chunk, plus the AR and TAR penalties when they are set."""
        losses, outputs = self._read_chunk(batch, "train")
        loss = losses.mean()
        alpha, beta = self.hparams.activation_regularization, self.hparams.temporal_activation_regularization
        if alpha:
            loss = loss + alpha * self.output_dropout(outputs).float().pow(2).mean()
        if beta and outputs.shape[1] > 1:
            loss = loss + beta * (outputs[:, 1:] - outputs[:, :-1]).float().pow(2).mean()
        return loss

    def evaluate(self, batch: TokenChunk, stage: str) -> None:
        """Accumulate the per-token loss of one chunk."""
        losses = self.chunk_losses(batch, stage)
        self.metrics[stage]["loss"].update(losses.mean(), weight=losses.numel())

    def derived_metrics(self, stage: str, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{stage}_ppl`` and ``{stage}_bpc`` (bits per token) from the loss in nats per token."""
        return {**super().derived_metrics(stage, values), f"{stage}_bpc": bits(values[f"{stage}_loss"])}

    def check_data_state(self) -> None:
        """The tokenizer must have exactly ``vocab_size`` entries."""
        self.check_size("vocab_size", self.tokenizer, "tokenizer has {} tokens")

    # Generation: read each prompt from h_0 = 0, then sample (or search) one token at a time.

    def generation_defaults(self) -> GenerationConfig:
        """Sampling at temperature 1, 200 new tokens."""
        return GenerationConfig(max_length=200, temperature=1.0)

    def encode_inputs(self, inputs: list[str], **options: Any) -> PromptBatch:
        """Prompts -> a :class:`~rnnzoo.batches.PromptBatch`.

        Raises:
            ValueError: for an empty prompt, or one with characters the vocabulary lacks (and no ``unk_token``).
        """
        tokenizer = self.require_tokenizer()
        empty = [position for position, prompt in enumerate(inputs) if not prompt]
        if empty:
            raise ValueError(f'prompt(s) {empty} are empty: give at least one character, e.g. "\\n"')
        try:
            ids = [tokenizer.encode(prompt) for prompt in inputs]
        except ValueError as error:
            raise ValueError(f"the prompt holds {error}") from None
        tokens, lengths = pad_sequences(ids)
        return PromptBatch(tokens, lengths, list(inputs))

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        """Read prompts ``tokens [B, T]`` (real ``lengths [B]``) from h_0 = 0 in one backbone call, padding never read.

        Returns:
            The logits ``[B, V]`` after each prompt's last token, and the state there.
        """
        outputs, state = self.backbone(self.embed(tokens), lengths)
        last = outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths.to(outputs.device) - 1]
        return self.head(self.output_dropout(last)), state

    def start(self, batch: PromptBatch) -> tuple[Tensor, State, None]:
        """Read every prompt (:meth:`encode`): the logits after its last token, and the state."""
        logits, state = self.encode(batch.tokens, batch.lengths)
        return logits, state, None

    def output_text(self, batch: PromptBatch, row: int, tokens: Tensor) -> str:
        """The prompt followed by the generated text (after a space, for a word-level model)."""
        tokenizer = self.require_tokenizer()
        separator = " " if getattr(tokenizer, "word_level", False) and len(tokens) else ""
        return batch.texts[row] + separator + tokenizer.decode(tokens)

    def predict_batch(self, batch: PromptBatch | TokenChunk, **options: Any) -> list[dict[str, Any]]:
        """Continue prompts (a :class:`PromptBatch`), or score a data module's stream chunk (``{"nll": [...]}``)."""
        if isinstance(batch, PromptBatch):
            return super().predict_batch(batch, **options)
        return [{"nll": row.tolist()} for row in self.chunk_losses(batch, "predict").cpu()]

    def generate(
        self,
        prompt: str = "\n",
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> str:
        """Continue one prompt: an alias of :meth:`predict` that returns the text.

        Args:
            prompt: text to continue; every character must be in the vocabulary
                (or the tokenizer must have an ``unk_token``).
            max_new_tokens: how many tokens to add.
            temperature: below 1 is more conservative, 0 is greedy.
            top_k: sample among the ``k`` most likely tokens only.
            seed: seed for reproducible samples.
            **options: any other :class:`~rnnzoo.decoding.GenerationConfig` option (``top_p``, ``beam_size``...).

        Returns:
            The prompt followed by the generated text.
        """
        options.update(max_length=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)
        return self.predict([prompt], **options)[0]["text"]
