"""Serving a task over HTTP with LitServe: ``POST /predict`` answers with the task's :meth:`~rnnzoo.RNNTask.predict`.

    rnnzoo serve --model sst2-gru_small --port 8000
    curl -X POST localhost:8000/predict -d '{"inputs": ["a gripping film"], "options": {}}'
    # {"outputs": [{"label": 1, "probabilities": {"0": 0.03, "1": 0.97}}]}

Requests arriving together are batched (``max_batch_size``, ``batch_timeout``): the inputs
of requests with the same options run as one ``predict`` call, and each request gets its
own outputs back, in order. A bad request (wrong fields, empty or over-long text, an
unknown or invalid option, an input the model cannot read) is answered with a 400 naming
the problem, without failing the other requests of its batch, and the server keeps
serving. ``GET /health`` answers ``ok`` once the model is loaded. Needs the optional extra
``serve`` (``pip install rnnzoo[serve]``, LitServe).
"""

import json
from dataclasses import dataclass
from typing import Any

import torch

try:
    import litserve as ls
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
except ImportError as error:  # the optional extra
    raise ImportError("rnnzoo serve needs LitServe: pip install 'rnnzoo[serve]'") from error

from rnnzoo.tasks import RNNTask, SequencePredictor, Tagger, load_task

FIELDS = ("inputs", "options")
"""The fields of a request body."""


@dataclass(frozen=True)
class Checked:
    """A checked request: its inputs (as :meth:`RNNTask.predict` reads them) and options."""

    inputs: list[Any]
    options: dict[str, Any]


@dataclass(frozen=True)
class BadRequest:
    """A request that cannot be answered, and why (sent back as a 400)."""

    message: str


class TaskAPI(ls.LitAPI):
    """The LitServe API of an rnnzoo task: decode and check a request, batch, ``predict``, encode.

    Args:
        ckpt_path: a Lightning checkpoint written by ``rnnzoo fit``, or
        model: a pretrained model (a bundled name, an artifact folder or a hub repo id).
        max_batch_size: requests batched together at most.
        batch_timeout: seconds to wait for a batch to fill.
        max_inputs: inputs per request at most.
        max_chars: characters per text input at most.
    """

    def __init__(
        self,
        ckpt_path: str | None = None,
        model: str | None = None,
        max_batch_size: int = 8,
        batch_timeout: float = 0.01,
        max_inputs: int = 64,
        max_chars: int = 10_000,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        if (ckpt_path is None) == (model is None):
            raise ValueError("give exactly one of ckpt_path (a Lightning checkpoint) or model (a pretrained model)")
        self.ckpt_path, self.model_name = ckpt_path, model
        self.max_inputs, self.max_chars = max_inputs, max_chars
        self.task: RNNTask | None = None

    def setup(self, device: str) -> None:
        """Load the model once per worker."""
        if self.ckpt_path is not None:
            task = load_task(self.ckpt_path, map_location=device)
        else:
            task = RNNTask.from_pretrained(self.model_name, map_location=device)
        self.task = task.eval()

    def decode_request(self, request: Request) -> Checked | BadRequest:
        """Check the body (LitServe hands over its parsed JSON), the inputs and the options.

        Never raises: a bad request becomes a :class:`BadRequest` and must not fail its batch.
        """
        try:
            return self._check(request)
        except (ValueError, KeyError, TypeError, RuntimeError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            return BadRequest(str(message)[:1000])

    def _check(self, body: Any) -> Checked:
        if not isinstance(body, dict) or "inputs" not in body or set(body) - set(FIELDS):
            raise ValueError(
                f'the body must be a JSON object {{"inputs": [...], "options": {{...}}}}, got {body!r:.200}'
            )
        inputs, options = body["inputs"], body.get("options") or {}
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= self.max_inputs:
            raise ValueError(f'"inputs" must be a list of 1 to {self.max_inputs} inputs')
        if not isinstance(options, dict):
            raise ValueError('"options" must be a JSON object')
        for position, item in enumerate(inputs):
            if isinstance(item, str) and not (0 < len(item) <= self.max_chars):
                raise ValueError(f"input {position} must hold 1 to {self.max_chars} characters, it has {len(item)}")
        if isinstance(self.task, SequencePredictor) or (isinstance(self.task, Tagger) and not self.task.words):
            inputs = [torch.tensor(item, dtype=torch.float) for item in inputs]  # frame sequences [T, F]
        unknown = sorted(set(options) - set(self.task.option_names()))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; this model takes {self.task.option_names()}")
        if hasattr(self.task, "generation_config"):
            self.task.generation_config(**options)  # an invalid option is a 400, not a failed batch
        self.task.encode_inputs(self.task.input_list(inputs), **options)  # inputs the model cannot read
        return Checked(inputs, options)

    def batch(self, requests: list[Checked | BadRequest]) -> list[Checked | BadRequest]:
        """Keep the requests as they are: :meth:`predict` groups them by options."""
        return list(requests)

    def predict(self, requests: Any) -> Any:
        """Answer the good requests, the inputs of those with the same options in one ``predict`` call."""
        single = not isinstance(requests, list)
        requests = [requests] if single else requests
        answers: list[Any] = list(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            if isinstance(request, Checked):
                groups.setdefault(json.dumps(request.options, sort_keys=True), []).append(index)
        for indices in groups.values():
            inputs = [item for index in indices for item in requests[index].inputs]
            outputs = iter(self.task.predict(inputs, **requests[indices[0]].options))
            for index in indices:
                answers[index] = [next(outputs) for _ in requests[index].inputs]
        return answers[0] if single else answers

    def unbatch(self, outputs: list[Any]) -> list[Any]:
        """One answer per request."""
        return outputs

    def encode_response(self, output: Any) -> Any:
        """``{"outputs": [...]}``, or a 400 with ``{"error": ...}`` for a bad request."""
        if isinstance(output, BadRequest):
            return JSONResponse({"error": output.message}, status_code=400)
        return {"outputs": output}


class JSONBodies(BaseHTTPMiddleware):
    """Read every ``POST`` body as JSON whatever its content type (``curl -d`` says form); not JSON: a 400."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Parse the body once before the API reads it, and label it JSON."""
        if request.method == "POST":
            try:
                json.loads(await request.body())
            except ValueError:
                return JSONResponse({"error": 'the body must be JSON: {"inputs": [...], "options": {...}}'}, 400)
            headers = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"content-type"]
            request.scope["headers"] = [*headers, (b"content-type", b"application/json")]
        return await call_next(request)


def serve(
    ckpt_path: str | None = None,
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch_size: int = 8,
    batch_timeout: float = 0.01,
    device: str = "cpu",
) -> None:
    """Serve a model over HTTP with LitServe: ``POST /predict`` and ``GET /health`` (see the module docstring).

    Args:
        ckpt_path: a checkpoint written by ``rnnzoo fit``.
        model: or a pretrained model (bundled name, artifact folder or hub repo id).
        host: the address to listen on.
        port: the port to listen on.
        max_batch_size: requests batched together at most (dynamic batching).
        batch_timeout: seconds to wait for a batch to fill.
        device: where to run (``cpu``, ``cuda``).
    """
    api = TaskAPI(ckpt_path, model, max_batch_size, batch_timeout)
    accelerator = "cpu" if device == "cpu" else "auto"
    server = ls.LitServer(api, accelerator=accelerator, devices=1, timeout=60, middlewares=[JSONBodies])
    server.run(host=host, port=port, generate_client_file=False, num_api_servers=1)
