"""Checkpoints and artifacts share one format and one class importer, and read and write UTF-8 whatever the locale."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from rnnzoo.serialization import FORMAT, check_format, class_path, import_class

SAVE_AND_LOAD = """
import sys
from rnnzoo import Classifier, DataState, RNNTask, TextTokenizer
tokenizer = TextTokenizer.train_word_level(["Grüße aus Köln", "ça va très bien"])
model = Classifier(len(tokenizer), 2, hidden_size=4)
model.data_state = DataState(tokenizer=tokenizer, labels=["böse", "gut"], label_names=["böse", "gut"])
model.save_pretrained(sys.argv[1])
restored = RNNTask.from_pretrained(sys.argv[1])
assert restored.data_state == model.data_state
print(restored.predict("Grüße")[0]["label"] in ("böse", "gut"))
"""


def test_artifacts_are_utf8_in_an_ascii_locale(tmp_path: Path):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    check = subprocess.run([sys.executable, "-c", "import locale; print(locale.getpreferredencoding())"], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert "utf" not in check.stdout.lower(), "the locale must be ASCII for this test to mean anything"
    script = tmp_path / "save_and_load.py"  # a source file is UTF-8 whatever the locale; a -c argument is not
    script.write_text(SAVE_AND_LOAD, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "m")], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert result.stdout.strip() == b"True"
    assert "grüße" in (tmp_path / "m" / "tokenizer.json").read_text(encoding="utf-8")


def test_a_class_path_imports_back():
    from rnnzoo import Seq2Seq

    assert import_class(class_path(Seq2Seq)) is Seq2Seq
    with pytest.raises(ValueError, match="cannot import the task class 'no_such_module.Task'"):
        import_class("no_such_module.Task")


def test_a_newer_format_is_refused_and_older_ones_read():
    check_format(1, "x")
    check_format(FORMAT, "x")
    with pytest.raises(ValueError, match=f"format {FORMAT + 1} .*upgrade rnnzoo"):
        check_format(FORMAT + 1, "this checkpoint", "9.9")


@pytest.mark.parametrize("module", ["masking", "attention", "pooling", "crf"])
def test_the_old_module_paths_still_import_with_a_deprecation_warning(module):
    sys.modules.pop(f"rnnzoo.{module}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        __import__(f"rnnzoo.{module}")
    assert any(issubclass(w.category, DeprecationWarning) and f"rnnzoo.nn.{module}" in str(w.message) for w in caught)


# Checkpoints are read as plain data only, with one clear error for what is not a readable checkpoint.


class CreatesAFile:
    """A pickle payload: unpickling it would create a file (any code could run instead)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def crafted_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    import torch

    marker = tmp_path / "payload_ran"
    path = tmp_path / "crafted.ckpt"
    task = {"task": "rnnzoo.tasks.classifier.Classifier"}
    torch.save({"state_dict": {}, "rnnzoo": task, "hyper_parameters": CreatesAFile(marker)}, path)
    return path, marker


def test_a_crafted_checkpoint_runs_no_code(tmp_path: Path):
    from rnnzoo import load_task

    path, marker = crafted_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="holds objects other than tensors and plain data"):
        load_task(path)
    assert not marker.exists()


def damaged_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    import torch

    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "rnnzoo": {}}, whole)
    data = whole.read_bytes()
    cases = {
        "empty": (b"", "is empty \\(0 bytes\\)"),
        "truncated": (data[: len(data) // 2], "is truncated or damaged"),
        "text": (b"hello, I am not a checkpoint\n", "is not a checkpoint: a .ckpt written by rnnzoo fit is a zip"),
        "zip_of_something_else": (b"PK\x03\x04" + bytes(100), "is truncated or damaged"),
    }
    files = {}
    for name, (content, message) in cases.items():
        (tmp_path / f"{name}.ckpt").write_bytes(content)
        files[name] = (tmp_path / f"{name}.ckpt", message)
    return files


def test_empty_truncated_and_garbage_checkpoints_are_one_clear_error(tmp_path: Path):
    from rnnzoo.serialization import read_checkpoint

    for path, message in damaged_files(tmp_path).values():
        with pytest.raises(ValueError, match=message):
            read_checkpoint(path)
    with pytest.raises(ValueError, match="is a folder, not a checkpoint file"):
        read_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_a_task_class_whose_module_is_not_importable_names_the_module(tmp_path: Path, monkeypatch):
    with pytest.raises(ValueError, match=r"its module 'my_tasks.tagging' is not importable.*my_tasks/tagging\.py"):
        import_class("my_tasks.tagging.MyTagger")
    with pytest.raises(ValueError, match="module '__main__' has no 'MyTagger'.*move it into a module"):
        import_class("__main__.MyTagger")
    (tmp_path / "my_tasks.py").write_text("from rnnzoo import Tagger\n\nclass MyTagger(Tagger):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # what the message asks for makes it load
    assert import_class("my_tasks.MyTagger").__name__ == "MyTagger"
