"""Many-to-many: encoder-decoder translation with attention, beam search and BLEU.

The encoder (any registered cell, bidirectional and stacked if asked) reads the
source; a bridge turns its final state into the decoder's first state; the
decoder (any registered cell) writes the target one token at a time. Each
decoder output ``h_t`` is combined with a context vector ``c_t`` into
``h~_t = tanh(W_c [h_t; c_t])``, which the output layer reads (OpenNMT-py's RNN
decoder, Luong et al. 2015). The context is

* ``attention: none``: the encoder's last state, fed to every decoder step
  (Sutskever et al. 2014 / Cho et al. 2014, bentrevett's "context vector" model);
* ``additive`` (Bahdanau et al. 2015) or ``multiplicative`` (Luong's ``general``
  or ``dot``): attention of ``h_t`` over the encoder outputs, padded source
  positions masked to zero weight (:mod:`rnnzoo.nn.attention`).

Input feeding (Luong) feeds ``h~_{t-1}`` into the decoder with the next token.
Training reads the reference target (teacher forcing, or the model's own guess
with probability ``1 - teacher_forcing``) with label smoothing; without input
feeding and with full teacher forcing, the decoder runs over the whole target in
one call, otherwise step by step. Decoding (greedy, sampling, beam search) goes
through :mod:`rnnzoo.decoding` with :meth:`Seq2Seq.step`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.batches import TranslationBatch, pad_sequences
from rnnzoo.decoding import GenerationConfig
from rnnzoo.metrics import BLEU
from rnnzoo.nn.attention import Attention
from rnnzoo.nn.bridge import StateBridge
from rnnzoo.nn.embedding import PretrainedEmbedding
from rnnzoo.nn.masking import lengths_to_mask
from rnnzoo.tasks.generative import GenerativeTask
from rnnzoo.tokenizers import PairTokenizer, TextTokenizer, Tokenizer

DecoderState = dict[str, Any]
"""What :meth:`Seq2Seq.step` carries: ``rnn`` (the decoder backbone's state), ``memory``,
``keys`` and ``mask`` (the encoded source), ``context`` (the fixed context of
``attention: none``) and ``feed`` (``h~_{t-1}`` with input feeding)."""


class Seq2Seq(GenerativeTask):
    """Encoder-decoder with optional attention, for translation.

    Logs ``train_loss`` (label-smoothed), ``grad_norm``, and for validation and
    test ``*_loss`` (cross-entropy in nats per target token, no smoothing),
    ``*_ppl`` and ``*_bleu`` (corpus BLEU, 0-100, see :meth:`bleu_forms`), decoded
    greedily for validation and with a beam for test by default.

    Args:
        vocab_size: ``{"source": ..., "target": ...}`` vocabulary sizes (linked from
            the data module by the CLI: ``TranslationDataModule.vocab_size``).
        encoder_cell: a registered cell name for the encoder.
        decoder_cell: a registered cell name for the decoder (default: ``encoder_cell``).
        embedding_size: features of the source and target embeddings.
        hidden_size: hidden features of each encoder direction.
        num_layers: stacked encoder layers.
        bidirectional: read the source both ways.
        decoder_hidden_size: hidden features of the decoder (default: the encoder's
            output size, ``directions * hidden_size``).
        decoder_num_layers: stacked decoder layers (default: ``num_layers``).
        attention: ``none``, ``additive`` or ``multiplicative``.
        score: the multiplicative score, ``general`` (``h^T W m``) or ``dot`` (``h^T m``).
        attention_size: hidden features of the additive score (default: decoder hidden size).
        input_feeding: feed ``h~_{t-1}`` into the decoder (needs attention).
        bridge: ``linear`` (``tanh(W h_enc)`` per decoder state, the directions of each
            encoder layer concatenated; the top encoder layer serves every decoder
            layer when the depths differ) or ``zero`` (the decoder starts at 0).
        dropout: on embeddings, between layers and before the output layer.
        teacher_forcing: probability of reading the reference token (1: always).
        label_smoothing: of the training loss.
        val_beam_size: beam for validation BLEU (1: greedy).
        test_beam_size: beam for test BLEU.
        length_penalty: GNMT alpha of beam search (0: none).
        max_decode_length: most target tokens decoded, end token included.
        max_length_ratio: each sentence also stops at ``ratio * source length + 10``
            tokens (fairseq's max_len_a / max_len_b), or None for ``max_decode_length`` alone.
        embeddings: a GloVe / word2vec / fastText text file whose vectors fill the source embedding
            at the first fit (word-level tokenizers only; see :meth:`~rnnzoo.tasks.RNNTask.load_pretrained_vectors`).
        freeze_embeddings: keep the pretrained table fixed in training.
        vectors_size: the vectors' width when it differs from ``embedding_size``: a trainable
            projection maps them to ``embedding_size``.
        trained_embedding_size: with ``embeddings``, also a trained embedding of this width
            (zeros at first) concatenated to the vectors, as Kim 2014's static and trained
            channels: the backbone reads ``embedding_size + trained_embedding_size`` features.
        encoder_options: extra options of the encoder cell.
        decoder_options: extra options of the decoder cell.
        optimizer: see :class:`~rnnzoo.tasks.RNNTask`.
        scheduler: see :class:`~rnnzoo.tasks.RNNTask`.
    """

    output_key = "translation"

    def __init__(
        self,
        vocab_size: dict[str, int],
        encoder_cell: str = "gru",
        decoder_cell: str | None = None,
        embedding_size: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = True,
        decoder_hidden_size: int | None = None,
        decoder_num_layers: int | None = None,
        attention: Literal["none", "additive", "multiplicative"] = "additive",
        score: Literal["general", "dot"] = "general",
        attention_size: int | None = None,
        input_feeding: bool = False,
        bridge: Literal["linear", "zero"] = "linear",
        dropout: float = 0.3,
        teacher_forcing: float = 1.0,
        label_smoothing: float = 0.0,
        val_beam_size: int = 1,
        test_beam_size: int = 5,
        length_penalty: float = 0.6,
        max_decode_length: int = 100,
        max_length_ratio: float | None = 2.0,
        embeddings: str | None = None,
        freeze_embeddings: bool = False,
        vectors_size: int | None = None,
        trained_embedding_size: int = 0,
        encoder_options: dict[str, Any] | None = None,
        decoder_options: dict[str, Any] | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self._check_options()
        self.source_embedding = self.build_embedding(vocab_size["source"], embedding_size)
        self.target_embedding = nn.Embedding(vocab_size["target"], embedding_size)
        options = {"num_layers": num_layers, "dropout": dropout, "bidirectional": bidirectional}
        self.encoder = self.build_backbone(
            encoder_cell, self.source_embedding.output_size, hidden_size, **options, **(encoder_options or {})
        )
        memory_size = self.encoder.output_size
        decoder_hidden_size = decoder_hidden_size or memory_size
        fed = (memory_size if attention == "none" else 0) + (decoder_hidden_size if input_feeding else 0)
        options = {"num_layers": decoder_num_layers or num_layers, "dropout": dropout, **(decoder_options or {})}
        self.decoder = self.build_backbone(
            decoder_cell or encoder_cell, embedding_size + fed, decoder_hidden_size, **options
        )
        kind = "additive" if attention == "additive" else score
        self.attention = (
            None if attention == "none" else Attention(kind, decoder_hidden_size, memory_size, attention_size)
        )
        layers, states = self.decoder.num_layers, len(self.decoder.state_names)
        self.bridge = StateBridge(memory_size, decoder_hidden_size, layers, states) if bridge == "linear" else None
        self.combine = nn.Linear(decoder_hidden_size + memory_size, decoder_hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(decoder_hidden_size, vocab_size["target"])
        self.metrics = self.stage_metrics(bleu=BLEU(tokenize="none"))

    def _check_options(self) -> None:
        """One clear error for an option that cannot work."""
        hp = self.hparams
        if not isinstance(hp.vocab_size, dict) or set(hp.vocab_size) != {"source", "target"}:
            raise ValueError(
                f"vocab_size must be a dict {{'source': int, 'target': int}} "
                f"(TranslationDataModule.vocab_size), got {hp.vocab_size!r}"
            )
        if any(not isinstance(size, int) or size <= 4 for size in hp.vocab_size.values()):
            raise ValueError(f"vocab sizes must be integers above 4 (4 special tokens), got {hp.vocab_size}")
        if hp.attention not in ("none", "additive", "multiplicative"):
            raise ValueError(f"attention must be 'none', 'additive' or 'multiplicative', got {hp.attention!r}")
        if hp.input_feeding and hp.attention == "none":
            raise ValueError(
                "input_feeding needs attention ('additive' or 'multiplicative'); with none the "
                "encoder's context vector is fed at every step already"
            )
        if hp.bridge not in ("linear", "zero"):
            raise ValueError(f"bridge must be 'linear' or 'zero', got {hp.bridge!r}")
        if not 0.0 <= hp.teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1], got {hp.teacher_forcing}")
        if not 0.0 <= hp.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {hp.label_smoothing}")
        if hp.max_length_ratio is not None and hp.max_length_ratio <= 0:
            raise ValueError(f"max_length_ratio must be positive or None, got {hp.max_length_ratio}")
        for option, value in (("val_beam_size", hp.val_beam_size), ("test_beam_size", hp.test_beam_size)):
            if value < 1:
                raise ValueError(f"{option} must be at least 1 (1 is greedy), got {value}")

    def embedding_vocabulary(self) -> tuple[PretrainedEmbedding, Tokenizer | None]:
        """The source embedding takes the ``embeddings`` vectors, indexed by the source tokenizer."""
        return self.source_embedding, None if self.tokenizer is None else self.tokenizer.source

    # The model: encode once, then decode a whole target or one token at a time.

    def encode(self, source: Tensor, source_lengths: Tensor) -> DecoderState:
        """Read ``source [B, S]`` (real ``source_lengths [B]``) into the decoder's first state."""
        memory, final = self.encoder(self.dropout(self.source_embedding(source)), source_lengths)
        h = final[0] if isinstance(final, tuple) else final
        layers, directions = self.encoder.num_layers, self.encoder.num_directions
        batch = source.shape[0]
        # [layers * directions, B, H] -> [layers, B, directions * H]: each layer's directions side by side.
        h = h.view(layers, directions, batch, -1).permute(0, 2, 1, 3).reshape(layers, batch, -1)
        if self.bridge is not None:
            rnn = self.bridge(h)
        else:
            rnn = self.decoder.initial_state(batch, source.device, memory.dtype)
        state: DecoderState = {"rnn": rnn, "context": h[-1]}
        if self.attention is not None:
            mask = lengths_to_mask(source_lengths.to(source.device), source.shape[1])
            state.update(memory=memory, keys=self.attention.keys(memory), mask=mask)
        if self.hparams.input_feeding:
            state["feed"] = memory.new_zeros(batch, self.decoder.hidden_size)
        return state

    def decode(
        self, tokens: Tensor, state: DecoderState, lengths: Tensor | None = None
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """Decode ``tokens [B, T]`` from ``state``: ``(logits [B, T, V], state, attention weights [B, T, S])``.

        ``T > 1`` needs no input feeding (each step would need the previous one's
        output); ``lengths`` are the real target lengths of a padded batch.
        """
        steps = tokens.shape[1]
        inputs = self.dropout(self.target_embedding(tokens))
        if self.attention is None:
            inputs = torch.cat([inputs, state["context"].unsqueeze(1).expand(-1, steps, -1)], dim=-1)
        if self.hparams.input_feeding:
            if steps != 1:
                raise ValueError("with input_feeding the decoder reads one token at a time (use step())")
            inputs = torch.cat([inputs, state["feed"].unsqueeze(1)], dim=-1)
        outputs, rnn = self.decoder(inputs, lengths, state["rnn"])
        weights = None
        if self.attention is None:
            contexts = state["context"].unsqueeze(1).expand(-1, steps, -1)
        else:
            contexts, weights = self.attention(outputs, state["memory"], state["keys"], state["mask"])
        attentional = torch.tanh(self.combine(torch.cat([outputs, contexts], dim=-1)))
        state = {**state, "rnn": rnn}
        if self.hparams.input_feeding:
            state["feed"] = attentional[:, -1]
        return self.head(self.dropout(attentional)), state, weights

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One token per row: ``tokens [B]`` -> ``(logits [B, V], state)`` (the decoding step)."""
        logits, state, _ = self.decode(tokens.unsqueeze(1), state)
        return logits.squeeze(1), state

    def forward(
        self,
        source: Tensor,
        source_lengths: Tensor,
        target_inputs: Tensor,
        target_lengths: Tensor | None = None,
        teacher_forcing: float = 1.0,
    ) -> Tensor:
        """Logits ``[B, T, V]`` of the next target token at every position of ``target_inputs [B, T]``.

        Args:
            source: ``[B, S]`` source ids.
            source_lengths: ``[B]`` real source lengths.
            target_inputs: ``[B, T]`` ``<bos> y_1 ... y_{T-1}`` (padded).
            target_lengths: ``[B]`` real lengths of ``target_inputs`` (None: no padding).
            teacher_forcing: probability that a position reads the reference token
                rather than the model's previous argmax (per row and step).
        """
        state = self.encode(source, source_lengths)
        if teacher_forcing >= 1.0 and not self.hparams.input_feeding:
            return self.decode(target_inputs, state, target_lengths)[0]
        steps, logits = target_inputs.shape[1], []
        token = target_inputs[:, 0]
        for position in range(steps):
            step_logits, state = self.step(token, state)
            logits.append(step_logits)
            if position + 1 < steps:
                token = target_inputs[:, position + 1]
                if teacher_forcing < 1.0:
                    guess = torch.rand(token.shape, device=token.device) >= teacher_forcing
                    token = torch.where(guess, step_logits.argmax(-1), token)
        return torch.stack(logits, dim=1)

    # Training and evaluation.

    def _logits_and_targets(self, batch: TranslationBatch, teacher_forcing: float) -> tuple[Tensor, Tensor]:
        inputs, targets = batch.target[:, :-1], batch.target[:, 1:]
        logits = self(batch.source, batch.source_lengths, inputs, batch.target_lengths - 1, teacher_forcing)
        return logits.float().flatten(0, 1), targets.flatten()

    def training_loss(self, batch: TranslationBatch) -> Tensor:
        """Label-smoothed cross-entropy per target token (padding ignored)."""
        logits, targets = self._logits_and_targets(batch, self.hparams.teacher_forcing)
        return F.cross_entropy(logits, targets, ignore_index=0, label_smoothing=self.hparams.label_smoothing)

    def evaluate(self, batch: TranslationBatch, stage: str) -> None:
        """Accumulate the loss and BLEU (decoded with ``val_beam_size`` or ``test_beam_size``)."""
        logits, targets = self._logits_and_targets(batch, 1.0)
        metrics = self.metrics[stage]
        metrics["loss"].update(F.cross_entropy(logits, targets, ignore_index=0), weight=int((targets != 0).sum()))
        beam_size = self.hparams.val_beam_size if stage == "val" else self.hparams.test_beam_size
        hypotheses = self.generate_hypotheses(batch, GenerationConfig(beam_size=beam_size))
        forms = [self.bleu_forms(h[0].tokens, r) for h, r in zip(hypotheses, batch.references, strict=True)]
        metrics["bleu"].update([hyp for hyp, _ in forms], [ref for _, ref in forms])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also read checkpoints of format 1, whose linear bridge was a list of layers (``bridge.0``)."""
        super().on_load_checkpoint(checkpoint)
        weights = checkpoint.get("state_dict", {})
        for key in [key for key in weights if key.startswith("bridge.") and key[7].isdigit()]:
            weights[f"bridge.projections.{key[7:]}"] = weights.pop(key)

    # Tokenizers, from the data module at setup and from checkpoints after; BLEU's text forms.

    @property
    def _target(self) -> TextTokenizer:
        return self.require_tokenizer().target

    def check_data_state(self) -> None:
        """The tokenizer must be a source/target pair with the model's vocabulary sizes."""
        if self.tokenizer is None:
            return
        if not isinstance(self.tokenizer, PairTokenizer):
            raise ValueError(
                f"a Seq2Seq model needs a source and a target tokenizer (a TranslationDataModule), "
                f"got {self.tokenizer!r}"
            )
        if self.tokenizer.vocab_sizes != dict(self.hparams.vocab_size):
            raise ValueError(
                f"the tokenizers have {self.tokenizer.vocab_sizes} tokens but the model was built for "
                f"vocab_size={dict(self.hparams.vocab_size)}; build both from the same training split"
            )

    def bleu_forms(self, ids: Tensor | Sequence[int], reference: str) -> tuple[str, str]:
        """The hypothesis ``ids`` and the raw ``reference`` as BLEU reads them (space-separated tokens).

        Word-level targets: the hypothesis's tokens (``<unk>`` kept, it never matches)
        against the reference normalized and split into words the same way (unknown
        words kept): BLEU on tokenized, lowercased text as in bentrevett/pytorch-seq2seq.
        BPE targets: the detokenized hypothesis against the normalized reference, both
        split by sacrebleu's default ``13a`` tokenizer.
        """
        target = self._target
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        if target.word_level:
            return " ".join(target.id_to_token(i) for i in ids), " ".join(target.words(reference))
        normalizer = target.tokenizer.normalizer
        reference = normalizer.normalize_str(reference) if normalizer is not None else reference
        split = Tokenizer13a()
        return split(target.decode(ids)), split(reference)

    # Generation (rnnzoo.decoding through GenerativeTask) and inference.

    def generation_defaults(self) -> GenerationConfig:
        """Beam ``test_beam_size``, the model's length penalty and ``max_decode_length``."""
        hp = self.hparams
        return GenerationConfig(hp.max_decode_length, beam_size=hp.test_beam_size, length_penalty=hp.length_penalty)

    def end_token(self) -> int:
        """The target's ``<eos>``."""
        return self._target.eos_id

    def start(self, batch: TranslationBatch) -> tuple[Tensor, dict[str, Any], Tensor | None]:
        """Encode the sources, read ``<bos>``; each sentence stops at ``max_length_ratio * length + 10`` tokens."""
        state = self.encode(batch.source, batch.source_lengths)
        bos = torch.full((batch.source.shape[0],), self._target.bos_id, dtype=torch.long, device=batch.source.device)
        logits, state = self.step(bos, state)
        limits = None
        if self.hparams.max_length_ratio is not None:
            limits = (self.hparams.max_length_ratio * batch.source_lengths.cpu()).ceil().long() + 10
        return logits, state, limits

    def encode_inputs(self, inputs: list[str], **options: Any) -> TranslationBatch:
        """Source texts -> a :class:`~rnnzoo.batches.TranslationBatch` without targets.

        Raises:
            ValueError: for a text that is empty after tokenization.
        """
        ids = self.require_tokenizer().source.encode_batch(list(inputs))
        empty = [position for position, row in enumerate(ids) if not row]
        if empty:
            raise ValueError(f"text(s) {empty} are empty after tokenization: there is nothing to translate")
        source, lengths = pad_sequences([torch.tensor(row, dtype=torch.long) for row in ids])
        no_target = torch.zeros(len(ids), 0, dtype=torch.long)
        return TranslationBatch(source, lengths, no_target, torch.zeros(len(ids), dtype=torch.long), [""] * len(ids))

    def translate(self, texts: str | Sequence[str], beam_size: int = 5, **options: Any) -> list[str]:
        """Translate raw texts, the best translation of each: an alias of :meth:`predict`.

        Args:
            texts: one text or several, in the source language.
            beam_size: beams per sentence; 1 is greedy.
            **options: any other :class:`~rnnzoo.decoding.GenerationConfig` option (``length_penalty``,
                ``max_length``, ``temperature``, ``top_k``, ``seed`` ...).

        Raises:
            ValueError: for an empty text, or a bad decoding option.
        """
        return [output["translation"] for output in self.predict(texts, beam_size=beam_size, **options)]

    def translate_n_best(
        self, texts: str | Sequence[str], beam_size: int = 5, n_best: int = 1, **options: Any
    ) -> list[list[tuple[str, float]]]:
        """Deprecated: use ``predict(texts, beam_size=..., n_best=...)``; ``(translation, score)`` pairs, best first."""
        warnings.warn("Seq2Seq.translate_n_best is deprecated: use predict()", DeprecationWarning, stacklevel=2)
        outputs = self.predict(texts, beam_size=beam_size, n_best=n_best, **options)
        nan = float("nan")
        return [
            [(h["translation"], nan if h["score"] is None else h["score"]) for h in o.get("n_best", [o])]
            for o in outputs
        ]
