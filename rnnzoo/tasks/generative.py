"""The base of the tasks that write sequences: one decoding path for the language model, seq2seq and captioning.

A generative task says how to start (:meth:`GenerativeTask.start`: read the prompt, the
source or the condition and give the first next-token logits and state) and how to take
one step (:meth:`GenerativeTask.step`); greedy decoding, sampling and beam search come
from :mod:`rnnzoo.decoding`, driven by one :class:`~rnnzoo.decoding.GenerationConfig`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from torch import Tensor

from rnnzoo import decoding
from rnnzoo.decoding import GenerationConfig, Hypothesis
from rnnzoo.tasks.base import RNNTask, perplexity


class GenerativeTask(RNNTask):
    """An :class:`RNNTask` that generates sequences token by token.

    Subclasses implement :meth:`start`, :meth:`step` and :meth:`generation_defaults`,
    and may override :meth:`end_token` and :meth:`output_text`. Their states are a
    backbone state, or a dict whose ``rnn`` entry is one (batch on dim 1) and whose
    other tensors have the batch first, which is what :meth:`reorder_state` reorders.
    Besides the loss they log ``{stage}_ppl``.
    """

    output_key: ClassVar[str] = "text"
    """The key of the generated text in :meth:`predict`'s outputs."""

    def start(self, batch: Any) -> tuple[Tensor, Any, Tensor | None]:
        """Hook: ``(logits [B, V] of the first generated token, state, per-row length limits [B] or None)``."""
        raise NotImplementedError

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Hook: one token per row, ``tokens [B]`` -> ``(logits [B, V], state)``."""
        raise NotImplementedError

    def generation_defaults(self) -> GenerationConfig:
        """Hook: the task's default decoding (its ``max_length`` and ``length_penalty`` at least)."""
        raise NotImplementedError

    def end_token(self) -> int | None:
        """The end token's id, or None when sequences only end at ``max_length``."""
        return None

    @staticmethod
    def reorder_state(state: Any, indices: Tensor) -> Any:
        """Rows ``indices`` of a decoding state (beam search): a backbone state has the batch on dim 1."""
        if not isinstance(state, dict):
            return decoding.backbone_reorder(state, indices)
        return {
            key: decoding.backbone_reorder(value, indices)
            if key == "rnn"
            else decoding.index_select_state(value, indices)
            for key, value in state.items()
        }

    def generation_config(self, config: GenerationConfig | None = None, **options: Any) -> GenerationConfig:
        """:meth:`generation_defaults`, overridden by ``config``'s set fields and then by ``options`` (None: default).

        Raises:
            ValueError: for an unknown or invalid option.
        """
        unknown = sorted(set(options) - set(GenerationConfig.option_names()))
        if unknown:
            raise ValueError(f"unknown generation option(s) {unknown}; known: {GenerationConfig.option_names()}")
        defaults = self.generation_defaults()
        chosen = {} if config is None else {f: v for f, v in dataclasses.asdict(config).items() if v is not None}
        chosen.update({name: value for name, value in options.items() if value is not None})
        if chosen.get("beam_size", 1) > 1 and "temperature" not in chosen:
            chosen["temperature"] = None  # a default temperature (the LM samples by default) does not forbid a beam
        return dataclasses.replace(defaults, **chosen)

    def generate_hypotheses(self, batch: Any, config: GenerationConfig | None = None) -> list[list[Hypothesis]]:
        """Decode a batch: for every row its hypotheses (ids without start and end tokens), best first."""
        config = self.generation_config(config)
        with self.inference():
            logits, state, limits = self.start(batch)
            return decoding.decode(self.step, logits, state, config, self.end_token(), self.reorder_state, limits)

    def option_names(self) -> list[str]:
        """Every :class:`~rnnzoo.decoding.GenerationConfig` option, plus ``config`` itself."""
        return [*GenerationConfig.option_names(), "config"]

    def predict_batch(self, batch: Any, **options: Any) -> list[dict[str, Any]]:
        """``{output_key: best text, "score": ...}`` per row, plus ``n_best`` (text and score) with several.

        ``score`` is the beam search's length-penalised log-probability, None for greedy and sampled outputs.
        """
        config = self.generation_config(options.pop("config", None), **options)
        outputs = []
        for row, hypotheses in enumerate(self.generate_hypotheses(batch, config)):
            texts = [
                (self.output_text(batch, row, h.tokens), None if h.score != h.score else h.score) for h in hypotheses
            ]
            output: dict[str, Any] = {self.output_key: texts[0][0], "score": texts[0][1]}
            if config.n_best > 1:
                output["n_best"] = [{self.output_key: text, "score": score} for text, score in texts]
            outputs.append(output)
        return outputs

    def output_text(self, batch: Any, row: int, tokens: Tensor) -> str:
        """Hook: the text of generated ``tokens`` for ``row`` of ``batch`` (detokenized)."""
        tokenizer = self.require_tokenizer()
        detokenize = getattr(tokenizer, "detokenize", tokenizer.decode)
        return detokenize(tokens)

    def derived_metrics(self, stage: str, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{stage}_ppl``: the perplexity of the loss."""
        loss = values.get(f"{stage}_loss")
        return {} if loss is None else {f"{stage}_ppl": perplexity(loss)}
