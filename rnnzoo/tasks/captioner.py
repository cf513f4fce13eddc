"""One-to-many: a single input (a category, a feature vector or an image) and a sequence out.

An encoder turns the condition into a vector ``z``:

* ``condition: category``: an embedding of the category index (names by language);
* ``vector``: a linear projection of a precomputed feature vector;
* ``image``: an image encoder, the small built-in CNN (three conv / ReLU / max-pool
  blocks) or with ``encoder: torchvision:resnet18`` (and the other ResNets, VGG,
  MobileNet, EfficientNet, DenseNet, ConvNeXt) a torchvision model's convolutional
  trunk, its weights from a local file (:mod:`rnnzoo.nn.cnn`); ``z`` is a linear
  projection of its whole feature map (positions kept; a mean over the map would lose
  where things are), whose cells attention can also read.

The decoder (any registered cell) writes the sequence one token at a time, and
``conditioning`` says how ``z`` reaches it:

* ``init_state`` (Show and Tell, Vinyals et al. 2015): ``z`` is projected into the
  decoder's first state, ``h_0 = tanh(W_h z)`` (and ``c_0 = tanh(W_c z)`` for LSTM);
* ``first_input`` (the classic "one-to-many" seed): ``z`` is concatenated to the
  token embedding at the first step and zeros take its place afterwards.

With ``attention`` (image condition only) every decoder output attends over the
CNN's spatial features (:mod:`rnnzoo.nn.attention`) and ``tanh(W [h_t; c_t])`` feeds the
output layer, as Show, Attend and Tell does with soft attention (the context is
read after the step, Luong-style, so teacher forcing runs in one call). Training
reads the reference (teacher forcing); generation (greedy, sampling, beam search)
goes through :mod:`rnnzoo.decoding` with :meth:`Captioner.step`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric

from rnnzoo.batches import CaptionBatch
from rnnzoo.decoding import GenerationConfig
from rnnzoo.errors import preview
from rnnzoo.images import IMAGENET_MEAN, IMAGENET_STD, load_image, prepare_image
from rnnzoo.metrics import BLEU
from rnnzoo.nn.attention import Attention
from rnnzoo.nn.bridge import StateBridge
from rnnzoo.nn.cnn import TORCHVISION_PREFIX, SmallCNN, feature_map_shape, load_encoder_weights, torchvision_trunk
from rnnzoo.tasks.generative import GenerativeTask
from rnnzoo.tokenizers import TextTokenizer, special_ids

ConditionKind = Literal["category", "vector", "image"]


def load_vector(path: str | os.PathLike) -> Tensor:
    """One precomputed feature vector from a ``.pt`` or ``.npy`` file.

    Raises:
        FileNotFoundError: when there is no file.
        ValueError: for another file type, or a file that does not hold one 1-D vector.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no feature vector file at {path!r}")
    if path.endswith(".pt"):
        vector = torch.as_tensor(torch.load(path, weights_only=True))
    elif path.endswith(".npy"):
        import numpy as np

        vector = torch.from_numpy(np.load(path, allow_pickle=False))
    else:
        raise ValueError(f"a feature vector file must be .pt or .npy, got {path!r}")
    if vector.dim() != 1:
        raise ValueError(f"{path!r} holds an array of shape {list(vector.shape)}: a feature vector is 1-D")
    return vector


Conditioning = Literal["init_state", "first_input"]


class Captioner(GenerativeTask):
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
        encoder: the image encoder: ``cnn`` (the built-in CNN) or ``torchvision:NAME`` (``torchvision:resnet18``;
            needs torchvision).
        encoder_weights: a local state-dict file for the image encoder (for ``torchvision:NAME``, the full
            model's, as torchvision downloads it), read at the first fit; None keeps the random initialisation.
        freeze_encoder: keep the image encoder's weights and batch-norm statistics as they are (pretrained).
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
        encoder: str = "cnn",
        encoder_weights: str | None = None,
        freeze_encoder: bool = False,
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
        if condition not in ("category", "vector", "image"):
            raise ValueError(f"condition must be 'category', 'vector' or 'image', got {condition!r}")
        if attention and condition != "image":
            raise ValueError(f"attention reads spatial image features: it needs condition='image', not {condition!r}")
        condition_size = condition_size or hidden_size
        self.cnn = self._image_encoder() if condition == "image" else None
        map_channels, *map_size = feature_map_shape(self.cnn, image_channels, image_size) if self.cnn else (0, 0, 0)
        self.map_size = tuple(map_size)  # (h, w) of the image encoder's feature map: what attention reads
        self.encoder = self._condition_encoder(condition_size, map_channels * map_size[0] * map_size[1])
        # Features of images and vectors can be large: normalised, z does not saturate the tanh of init_state.
        self.norm = nn.LayerNorm(condition_size) if condition != "category" else nn.Identity()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        first_input = conditioning == "first_input"
        input_size = embedding_size + (condition_size if first_input else 0)
        options = {"num_layers": num_layers, "dropout": dropout, **(cell_options or {})}
        self.decoder = self.build_backbone(cell, input_size, hidden_size, **options)
        states = len(self.decoder.state_names)
        self.bridge = None if first_input else StateBridge(condition_size, hidden_size, num_layers, states)
        self.attention = Attention("additive", hidden_size, map_channels) if attention else None
        self.combine = nn.Linear(hidden_size + map_channels, hidden_size) if attention else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.metrics = self.stage_metrics(bleu=BLEU(n_gram=4, tokenize="none"), exact=MeanMetric())

    def _image_encoder(self) -> nn.Module:
        """The built-in CNN or a torchvision trunk, frozen when ``freeze_encoder``."""
        hp = self.hparams
        if hp.encoder == "cnn":
            if hp.image_size < 8:
                raise ValueError(f"image_size must be at least 8 (the CNN halves it three times), got {hp.image_size}")
            encoder = SmallCNN(hp.image_channels, hp.cnn_channels)
        elif hp.encoder.startswith(TORCHVISION_PREFIX):
            encoder = torchvision_trunk(hp.encoder.removeprefix(TORCHVISION_PREFIX))
        else:
            raise ValueError(
                f"encoder must be 'cnn' or 'torchvision:NAME' (e.g. 'torchvision:resnet18'), got {hp.encoder!r}"
            )
        if hp.freeze_encoder:
            encoder.requires_grad_(False).eval()  # and :meth:`train` keeps it in eval mode
        return encoder

    def _condition_encoder(self, condition_size: int, map_features: int) -> nn.Module:
        """The layer that turns a condition into ``z``: an embedding, or a projection of a vector or the image map."""
        hp = self.hparams
        if hp.condition != "image" and (hp.encoder != "cnn" or hp.encoder_weights or hp.freeze_encoder):
            raise ValueError(
                f"encoder, encoder_weights and freeze_encoder describe the image encoder: condition={hp.condition!r} "
                "has none; set condition='image' or drop them"
            )
        if hp.condition == "category":
            if not hp.num_categories or hp.num_categories < 1:
                raise ValueError(f"condition='category' needs num_categories >= 1, got {hp.num_categories!r}")
            return nn.Embedding(hp.num_categories, condition_size)
        if hp.condition == "vector":
            if not hp.feature_size or hp.feature_size < 1:
                raise ValueError(f"condition='vector' needs feature_size >= 1, got {hp.feature_size!r}")
            return nn.Linear(hp.feature_size, condition_size)
        return nn.Linear(map_features, condition_size)

    def train(self, mode: bool = True) -> Captioner:
        """Set the training mode; a frozen image encoder stays in eval mode (its batch-norm statistics kept)."""
        super().train(mode)
        if self.cnn is not None and self.hparams.freeze_encoder:
            self.cnn.eval()
        return self

    def on_fit_start(self) -> None:
        """Fill the word embedding and the image encoder from their files at the first fit."""
        super().on_fit_start()
        self.load_encoder_weights()

    def load_encoder_weights(self) -> int | None:
        """Fill the image encoder from ``encoder_weights``, once (as :meth:`load_pretrained_vectors` does).

        The weights then live in the state dict and the file's name in ``data_state.options``, so a
        checkpoint or artifact never needs the file again and a resumed fit keeps the trained weights.

        Returns:
            The number of tensors loaded, or None when there was nothing to do.

        Raises:
            FileNotFoundError: when there is no file.
            ValueError: for a file of another model.
        """
        path = self.hparams.encoder_weights
        if path is None or "encoder_weights" in self.data_state.options:
            return None
        count = load_encoder_weights(self.cnn, path)
        self.data_state.options["encoder_weights"] = {"file": os.path.basename(path), "tensors": count}
        return count

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
                    "resize them with rnnzoo.images.prepare_image"
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
            rnn = self.bridge(z)
        state["rnn"] = rnn
        if self.attention is not None:
            state.update(memory=memory, keys=self.attention.keys(memory))
        return state

    def decode(self, tokens: Tensor, state: dict[str, Any], lengths: Tensor | None = None) -> tuple[Tensor, dict]:
        """Decode ``tokens [B, T]`` from ``state``: ``(logits [B, T, V], state)``.

        With ``first_input`` the state's ``feed`` (``z`` before the first step, zeros
        after) joins the first token's embedding; later tokens get zeros.
        """
        logits, state, _ = self.decode_attending(tokens, state, lengths)
        return logits, state

    def decode_attending(
        self, tokens: Tensor, state: dict[str, Any], lengths: Tensor | None = None
    ) -> tuple[Tensor, dict, Tensor | None]:
        """:meth:`decode`, and the attention weights ``[B, T, cells]`` over the feature map (None without attention)."""
        inputs = self.dropout(self.embedding(tokens))
        state = dict(state)
        if "feed" in state:
            feed = torch.zeros(*inputs.shape[:2], state["feed"].shape[-1], dtype=inputs.dtype, device=inputs.device)
            feed[:, 0] = state["feed"]
            inputs = torch.cat([inputs, feed], dim=-1)
            state["feed"] = torch.zeros_like(state["feed"])
        outputs, state["rnn"] = self.decoder(inputs, lengths, state["rnn"])
        weights = None
        if self.attention is not None:
            mask = torch.ones(state["memory"].shape[:2], dtype=torch.bool, device=outputs.device)
            contexts, weights = self.attention(outputs, state["memory"], state["keys"], mask)
            outputs = torch.tanh(self.combine(torch.cat([outputs, contexts], dim=-1)))
        return self.head(self.dropout(outputs)), state, weights

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One token per row: ``tokens [B]`` -> ``(logits [B, V], state)`` (the decoding step).

        ``<pad>`` and ``<bos>`` are never targets, so generation never picks them (their logits are -inf).
        """
        logits, state = self.decode(tokens.unsqueeze(1), state)
        pad_id, bos_id, _ = special_ids(self.tokenizer) if self.tokenizer is not None else (0, None, None)
        never = [pad_id] if bos_id is None else [pad_id, bos_id]
        return logits.squeeze(1).index_fill(1, torch.tensor(never, device=logits.device), float("-inf")), state

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

    def training_loss(self, batch: CaptionBatch) -> Tensor:
        """Cross-entropy per target token (padding ignored)."""
        return self._loss(batch)[0]

    def evaluate(self, batch: CaptionBatch, stage: str) -> None:
        """Accumulate the loss and, for word vocabularies, BLEU-4 and exact match against every reference."""
        metrics = self.metrics[stage]
        loss, tokens = self._loss(batch)
        metrics["loss"].update(loss, weight=tokens)
        if not isinstance(self.tokenizer, TextTokenizer):
            return
        beam = self.hparams.val_beam_size if stage == "val" else self.hparams.test_beam_size
        hypotheses = [row[0] for row in self.generate_hypotheses(batch, GenerationConfig(beam_size=beam))]
        texts = [" ".join(self.tokenizer.id_to_token(i) for i in h.tokens.tolist()) for h in hypotheses]
        references = [[" ".join(self.tokenizer.words(r)) for r in refs] for refs in batch.references]
        metrics["bleu"].update(texts, references)
        metrics["exact"].update(torch.tensor([float(t in refs) for t, refs in zip(texts, references, strict=True)]))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also read one-layer checkpoints of format 1, whose bridge was one linear layer for all state tensors."""
        super().on_load_checkpoint(checkpoint)
        weights = checkpoint.get("state_dict", {})
        if "bridge.weight" in weights and self.bridge is not None and self.hparams.num_layers == 1:
            for name in ("weight", "bias"):
                parts = weights.pop(f"bridge.{name}").chunk(len(self.bridge.projections))
                weights.update({f"bridge.projections.{k}.{name}": part for k, part in enumerate(parts)})

    # Categories and tokenizer, from the data module at setup and from checkpoints after.

    @property
    def categories(self) -> list[str] | None:
        """The category names by index (a category condition), from the data."""
        return self.label_names

    def check_data_state(self) -> None:
        """The tokenizer needs start, end and padding ids and ``vocab_size`` entries; categories ``num_categories``.

        Data of feature vectors needs a ``vector`` condition of their ``feature_size``.
        """
        if self.tokenizer is not None:
            special_ids(self.tokenizer)
        self.check_size("vocab_size", self.tokenizer, "tokenizer has {} tokens")
        if self.hparams.condition == "category":
            self.check_size("num_categories", self.labels, "data has {} categories")
        size = self.data_state.options.get("feature_size")
        if size is not None and (self.hparams.condition, self.hparams.feature_size) != ("vector", size):
            raise ValueError(
                f"the data holds feature vectors of {size} features but the model reads condition="
                f"{self.hparams.condition!r} with feature_size={self.hparams.feature_size}; "
                f"set condition='vector' and feature_size={size}"
            )

    # Generation (rnnzoo.decoding through GenerativeTask) and inference.

    def generation_defaults(self) -> GenerationConfig:
        """Greedy (beam 1), the model's length penalty and ``max_decode_length``."""
        return GenerationConfig(self.hparams.max_decode_length, length_penalty=self.hparams.length_penalty)

    def end_token(self) -> int:
        """The tokenizer's end token."""
        return special_ids(self.require_tokenizer())[2]

    def start(self, batch: CaptionBatch) -> tuple[Tensor, dict[str, Any], None]:
        """Encode the conditions and read ``<bos>``."""
        _, bos_id, _ = special_ids(self.require_tokenizer())
        state = self.encode(batch.condition)
        bos = torch.full((batch.condition.shape[0],), bos_id, dtype=torch.long, device=batch.condition.device)
        logits, state = self.step(bos, state)
        return logits, state, None

    def input_list(self, inputs: Any) -> list[Any]:
        """One category, path, feature vector or image is one input; otherwise a list of them."""
        single = isinstance(inputs, str | int | os.PathLike) or (
            isinstance(inputs, Tensor) and inputs.dim() in (1, 3) and self.hparams.condition != "category"
        )
        return [inputs] if single else list(inputs)

    def encode_inputs(self, inputs: list[Any], **options: Any) -> CaptionBatch:
        """Raw conditions -> a :class:`~rnnzoo.batches.CaptionBatch` without targets.

        Conditions are category names (or indices), feature vectors (or ``.pt``/``.npy`` files of
        one), raw images (``[C, H, W]`` or ``[H, W, C]``, uint8 0-255 or float 0-1; resized and
        normalised as the data module did) or image file paths.

        Raises:
            KeyError: for an unknown category, listing the known ones.
            ValueError: for an image of the wrong channel count or an unreadable image file.
        """
        hp = self.hparams
        if hp.condition == "category":
            condition = self._category_indices(inputs)
        elif hp.condition == "vector":
            vectors = [load_vector(c) if isinstance(c, str | os.PathLike) else c for c in inputs]
            condition = torch.stack([torch.as_tensor(v, dtype=torch.float) for v in vectors])
        else:
            options = self.data_state.options
            mean, std = options.get("mean", IMAGENET_MEAN), options.get("std", IMAGENET_STD)
            images = [load_image(c) if isinstance(c, str | os.PathLike) else torch.as_tensor(c) for c in inputs]
            condition = torch.stack([prepare_image(i, hp.image_size, hp.image_channels, mean, std) for i in images])
        count = len(inputs)
        return CaptionBatch(condition, torch.zeros(count, 0, dtype=torch.long), torch.zeros(count), [[]] * count)

    def _category_indices(self, conditions: list[Any]) -> Tensor:
        count = self.hparams.num_categories
        names = self.categories or [str(i) for i in range(count)]
        index = {name: position for position, name in enumerate(names)}
        unknown = [c for c in conditions if not isinstance(c, int) and str(c) not in index]
        if unknown:
            raise KeyError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {preview(unknown)}; known: {preview(names)}"
            )
        ids = [c if isinstance(c, int) else index[str(c)] for c in conditions]
        bad = [i for i in ids if not 0 <= i < count]
        if bad:
            raise KeyError(f"category indices {bad} are outside [0, {count})")
        return torch.tensor(ids, dtype=torch.long)

    def caption(self, conditions: Any, beam_size: int = 1, **options: Any) -> list[str]:
        """Generate one text per condition: an alias of :meth:`predict`.

        Args:
            conditions: one condition or several (see :meth:`encode_inputs`).
            beam_size: beams per condition; 1 is greedy (or sampling with a ``temperature``).
            **options: any other :class:`~rnnzoo.decoding.GenerationConfig` option (``temperature``,
                ``top_k``, ``top_p``, ``seed``, ``max_length``, ``length_penalty`` ...).

        Raises:
            KeyError: for an unknown category.
            ValueError: for an image of the wrong channel count or an unreadable image file.
        """
        return [output["text"] for output in self.predict(conditions, beam_size=beam_size, **options)]

    def attention_map(self, image: Any, caption: str) -> tuple[list[str], Tensor]:
        """Where the model looks in ``image`` for each word of ``caption``: ``(words, weights [words, h, w])``.

        The caption is read with teacher forcing, so row ``t`` is the attention with which the model
        scores word ``t`` (the end token last); the context is read after each step from the prefix
        alone, so for a caption the model generated these are the weights it generated it with. Each
        row sums to one over the ``h x w`` cells of the image encoder's feature map.

        Args:
            image: an image file or a raw image (see :meth:`encode_inputs`).
            caption: the caption, e.g. ``caption(image)[0]`` or a human reference.

        Raises:
            ValueError: for a captioner without attention, or an unreadable image.
        """
        if self.attention is None:
            raise ValueError(
                "this captioner has no attention (attention: false), so there is no map to draw: "
                "train one with condition: image and attention: true"
            )
        tokenizer = self.require_tokenizer()
        _, bos, eos = special_ids(tokenizer)
        ids = tokenizer.encode(caption).tolist()
        with self.inference():
            images = self.encode_inputs([image]).condition.to(self.device)
            tokens = torch.tensor([[bos, *ids]], device=self.device)
            _, _, weights = self.decode_attending(tokens, self.encode(images))
        words = [tokenizer.id_to_token(i) for i in [*ids, eos]]
        return words, weights[0].view(len(words), *self.map_size).cpu()

    def plot_attention(self, image: Any, caption: str, path: str | os.PathLike) -> str:
        """Draw :meth:`attention_map` over the image, one panel per word, into ``path`` (PNG, PDF, SVG ...).

        Raises:
            ImportError: without matplotlib (``pip install 'rnnzoo[plot]'``).
            ValueError: as :meth:`attention_map`.
        """
        from rnnzoo.plots import plot_attention  # matplotlib, only when a figure is drawn

        words, weights = self.attention_map(image, caption)
        pixels = load_image(image) if isinstance(image, str | os.PathLike) else torch.as_tensor(image)
        return plot_attention(pixels, words, weights, path)

    def generate(self, conditions: Any, beam_size: int = 1, **options: Any) -> list[str]:
        """Deprecated alias of :meth:`caption`."""
        warnings.warn("Captioner.generate is renamed Captioner.caption", DeprecationWarning, stacklevel=2)
        return self.caption(conditions, beam_size, **options)

    def generate_n_best(
        self, conditions: Any, beam_size: int = 1, n_best: int = 1, **options: Any
    ) -> list[list[tuple[str, float]]]:
        """Deprecated: use ``predict(conditions, beam_size=..., n_best=...)``; ``(text, score)`` pairs, best first."""
        warnings.warn("Captioner.generate_n_best is deprecated: use predict()", DeprecationWarning, stacklevel=2)
        outputs = self.predict(conditions, beam_size=beam_size, n_best=n_best, **options)
        nan = float("nan")
        return [[(h["text"], nan if h["score"] is None else h["score"]) for h in o.get("n_best", [o])] for o in outputs]
