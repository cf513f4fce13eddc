"""Build the bundled pretrained models (rnnzoo/weights) from checkpoints trained by our recipes.

For each model: round the weights to float16 (halving the package size), write the
artifact, measure the test metrics of the *written* artifact on the local copy of the data,
put them in its model card, and record every file's size and sha256 in rnnzoo/weights/zoo.json.

python benchmarks/build_zoo.py --ckpt tiny_shakespeare-lstm_small=runs/.../last.ckpt --ckpt sst2-gru_small=...
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

import torch
import yaml
from common import SHARED_DATA
from lightning import Trainer

from rnnzoo import RNNTask, load_task
from rnnzoo.hub.artifact import sha256_file
from rnnzoo.hub.zoo import INDEX, WEIGHTS_DIR
from rnnzoo.serialization import import_class

ROOT = Path(__file__).resolve().parents[1]

SPECS = {
    "tiny_shakespeare-lstm_small": {
        "recipe": "recipes/language_model/tiny_shakespeare-lstm_small.yaml",
        "local_copy": "tiny_shakespeare",
        "data_options": {},
        "license": "public domain text",
        "description": "2x256 character-level LSTM language model of Shakespeare; samples text",
    },
    "sst2-gru_small": {
        "recipe": "recipes/classification/sst2-gru_small.yaml",
        "local_copy": "sst2",
        "data_options": {"val_split": "validation", "test_split": "test"},
        "license": "unknown (Socher et al. 2013, cite)",
        "description": "BiGRU sentence sentiment classifier (SST-2, GLUE validation as test); labels 0 neg, 1 pos",
    },
    "ud_en_ewt_upos-lstm_small": {
        "recipe": "recipes/tagging/ud_en_ewt_upos-lstm_small.yaml",
        "local_copy": "ud_en_ewt",
        "data_options": {"name": None, "revision": None},
        "license": "CC BY-SA 4.0",
        "description": "BiLSTM part-of-speech tagger (17 universal tags) with character features, UD English-EWT",
    },
}


def measure(folder: Path, recipe: dict, spec: dict) -> dict[str, float]:
    """Test metrics of the artifact in ``folder`` on the local copy of its data, in float32."""
    options = {**recipe["data"]["init_args"], **spec["data_options"]}
    options["dataset"] = str(SHARED_DATA / spec["local_copy"])
    data_class = import_class(recipe["data"]["class_path"])
    if "pretrained_tokenizer" in inspect.signature(data_class).parameters:
        options["pretrained_tokenizer"] = str(folder)  # else the data rebuilds the same vocabularies from train
    data = data_class(**options)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(RNNTask.from_pretrained(folder), data, verbose=False)[0]
    return {name: round(float(value), 4) for name, value in sorted(results.items())}


def build(name: str, ckpt_path: str) -> dict:
    """Write one bundled model and return its zoo.json entry."""
    spec = SPECS[name]
    recipe = yaml.safe_load((ROOT / spec["recipe"]).read_text())
    folder = WEIGHTS_DIR / name
    model = load_task(ckpt_path).half()
    options = {key: "null" if value is None else value for key, value in spec["data_options"].items()}
    flags = "".join(f" --data.{key} {value}" for key, value in options.items())
    command = f"rnnzoo fit --config {spec['recipe']} --data.dataset ../shared/data/{spec['local_copy']}{flags}"
    card = {
        "name": name,
        "dataset": recipe["data"]["init_args"]["dataset"],
        "recipe": spec["recipe"],
        "command": command,
        "data_license": spec["license"],
    }
    model.save_pretrained(folder, model_card_kwargs=card)
    metrics = measure(folder, recipe, spec)
    model.save_pretrained(folder, model_card_kwargs={**card, "metrics": metrics})
    files = {file.name: {"size": file.stat().st_size, "sha256": sha256_file(file)} for file in sorted(folder.iterdir())}
    print(f"{name}: {metrics}, {sum(f['size'] for f in files.values()) / 2**20:.2f} MiB")
    return {
        "name": name,
        "task": type(model).__name__,
        "dataset": card["dataset"],
        "recipe": spec["recipe"],
        "command": command,
        "metrics": metrics,
        "num_params": sum(p.numel() for p in model.parameters()),
        "description": spec["description"],
        "license": spec["license"],
        "files": files,
        "data_options": spec["data_options"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", action="append", required=True, help="NAME=CHECKPOINT, one per model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    entries = {entry["name"]: entry for entry in json.loads(INDEX.read_text())} if INDEX.is_file() else {}
    for item in args.ckpt:
        name, _, ckpt_path = item.partition("=")
        if name not in SPECS:
            parser.error(f"unknown model {name!r}; known: {', '.join(SPECS)}")
        entries[name] = build(name, ckpt_path)
    INDEX.write_text(json.dumps([entries[name] for name in sorted(entries)], indent=2) + "\n")


if __name__ == "__main__":
    main()
