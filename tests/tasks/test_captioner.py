"""One-to-many: the condition reaches the decoder, decoding is consistent, checkpoints generate alone, clear errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import RECIPES, shared_dataset
from lightning import Trainer

from rnnzoo import (
    Captioner,
    CategorySequenceDataModule,
    DataState,
    GenerationConfig,
    ImageCaptionDataModule,
    TextTokenizer,
    decoding,
    load_task,
)
from rnnzoo.batches import CaptionBatch
from rnnzoo.cli import main
from rnnzoo.data.captioning import caption_references, char_tokenizer
from rnnzoo.data.shapes import draw_shape, shapes_split
from rnnzoo.images import load_image, prepare_image, write_ppm

NAMES = {
    "Russian": ["Ivanov", "Petrov", "Smirnov"],
    "Japanese": ["Sato", "Suzuki", "Tanaka"],
    "Irish": ["Murphy", "Kelly"],
}


def category_model(conditioning: str = "init_state", cell: str = "lstm") -> Captioner:
    torch.manual_seed(0)
    tokenizer = char_tokenizer([name for names in NAMES.values() for name in names])
    model = Captioner(
        len(tokenizer), "category", num_categories=3, conditioning=conditioning, cell=cell, hidden_size=16
    )
    model.data_state = DataState(tokenizer=tokenizer, labels=sorted(NAMES), label_names=sorted(NAMES))
    return model


def image_model(attention: bool = True, conditioning: str = "init_state") -> Captioner:
    torch.manual_seed(0)
    tokenizer = TextTokenizer.train_word_level(["a red blue green square circle on the left right top"])
    model = Captioner(
        len(tokenizer), "image", conditioning=conditioning, attention=attention, cnn_channels=8, hidden_size=16
    )
    model.tokenizer = tokenizer
    return model


def images(count: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.stack(
        [
            prepare_image(draw_shape(shape, colour, "left", 32, generator), 32)
            for shape, colour in [("square", "red"), ("circle", "blue"), ("triangle", "green"), ("square", "yellow")]
        ][:count]
    )


@pytest.mark.parametrize("conditioning", ["init_state", "first_input"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_different_conditions_give_different_distributions(conditioning, cell):
    model = category_model(conditioning, cell).eval()
    tokens = torch.tensor([[1, 5, 6, 7]] * 3)  # <bos> and three characters, the same for every category
    probabilities = model(torch.tensor([0, 1, 2]), tokens).softmax(-1)
    for position in range(
        tokens.shape[1]
    ):  # the condition shapes the first step and, through the state, the later ones
        assert not torch.allclose(probabilities[0, position], probabilities[1, position], atol=1e-4)
        assert not torch.allclose(probabilities[1, position], probabilities[2, position], atol=1e-4)


@pytest.mark.parametrize("conditioning", ["init_state", "first_input"])
def test_first_input_feeds_the_condition_only_at_the_first_step(conditioning):
    model = category_model(conditioning)
    inputs = []
    model.decoder.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    model(torch.tensor([0, 1]), torch.tensor([[1, 5, 6], [1, 5, 6]]))
    if conditioning == "init_state":
        assert inputs[0].shape[-1] == model.hparams.embedding_size
    else:
        extra = inputs[0][..., model.hparams.embedding_size :]
        assert extra[:, 0].abs().sum() > 0 and not torch.equal(extra[0, 0], extra[1, 0])
        assert torch.count_nonzero(extra[:, 1:]) == 0


@pytest.mark.parametrize("make", [category_model, lambda: category_model("first_input", "gru"), image_model])
def test_beam_size_one_equals_greedy(make):
    model = make().eval()
    condition = torch.tensor([0, 1, 2]) if model.hparams.condition == "category" else images(3)
    batch = CaptionBatch(condition, torch.zeros(3, 0, dtype=torch.long), torch.zeros(3), [[]] * 3)
    greedy = [row[0].tokens for row in model.generate_hypotheses(batch, GenerationConfig(max_length=12))]
    state = model.encode(condition)
    logits, state = model.step(torch.full((3,), 1 if model.hparams.condition == "category" else 2), state)
    eos = 2 if model.hparams.condition == "category" else 3
    beams = decoding.beam_search(model.step, logits, state, 1, 12, eos, reorder=model.reorder_state)
    for one, beam in zip(greedy, beams, strict=True):
        assert one.tolist() == beam[0].tokens.tolist()


@pytest.mark.parametrize("make", [category_model, lambda: image_model(True, "first_input"), image_model])
def test_batched_generation_equals_one_by_one(make):
    model = make()
    conditions = ["Irish", "Japanese", "Russian"] if model.hparams.condition == "category" else list(images(3))
    for options in ({"beam_size": 1}, {"beam_size": 3}, {"temperature": 1.0, "seed": 0}):
        if "seed" in options:  # one seeded draw per row: rows of a batch share the generator, so compare one row
            assert model.caption(conditions[:1], **options) == model.caption(conditions[0], **options)
            continue
        batched = model.caption(conditions, max_length=10, **options)
        assert batched == [model.caption(c, max_length=10, **options)[0] for c in conditions]


def test_an_unknown_category_is_one_clear_error():
    with pytest.raises(KeyError, match=r"unknown category \['Klingon'\]; known: \['Irish', 'Japanese', 'Russian'\]"):
        category_model().caption("Klingon")


def test_a_wrong_image_is_one_clear_error(tmp_path):
    model = image_model()
    with pytest.raises(ValueError, match="the image has 1 channel.*the model reads 3"):
        model.caption(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="the image has 2 channel"):
        model.caption(torch.zeros(32, 32, 2))
    (tmp_path / "broken.ppm").write_bytes(b"P6\n32 32\n255\n\x00\x01")
    with pytest.raises(ValueError, match="cannot read image"):
        model.caption(str(tmp_path / "broken.ppm"))
    (tmp_path / "text.png").write_text("not an image", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read image .*text.png"):
        model.caption(str(tmp_path / "text.png"))
    with pytest.raises(FileNotFoundError, match="no image file"):
        model.caption(str(tmp_path / "missing.ppm"))


def test_an_image_file_reads_back_and_captions_like_the_tensor(tmp_path):
    model = image_model()
    image = draw_shape("circle", "red", "top").permute(2, 0, 1)
    write_ppm(tmp_path / "circle.ppm", image)
    assert torch.equal(load_image(tmp_path / "circle.ppm"), image)
    assert model.caption(str(tmp_path / "circle.ppm")) == model.caption(image)


def test_caption_columns_are_checked():
    assert caption_references("a cat", 0, "caption") == ["a cat"]
    assert caption_references(["a cat", "one cat"], 0, "caption") == ["a cat", "one cat"]
    with pytest.raises(ValueError, match="row 3 of caption column 'caption' is an empty list"):
        caption_references([], 3, "caption")
    with pytest.raises(ValueError, match="row 0 of caption column 'label' holds a int.*string or a list of strings"):
        caption_references(7, 0, "label")


def test_the_image_data_module_rejects_a_caption_column_of_the_wrong_type(monkeypatch):
    from datasets import DatasetDict

    rows = shapes_split(4, seed=0).add_column("label", [1, 2, 3, 4])
    data = ImageCaptionDataModule("generated:shapes", caption_column="label")
    monkeypatch.setattr(data, "raw_splits", lambda: DatasetDict({"train": rows, "validation": rows}))
    with pytest.raises(ValueError, match="caption column 'label' holds a int"):
        data.vocab_size


def test_shapes_train_and_validate_with_bleu():
    data = ImageCaptionDataModule("generated:shapes", caption_column="captions", batch_size=16)
    data.raw_splits = lambda: __import__("rnnzoo.data.shapes", fromlist=["x"]).shapes_dataset(48, 8, 8)
    model = Captioner(data.vocab_size, "image", attention=True, cnn_channels=8, hidden_size=16)
    trainer = Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, data)
    metrics = trainer.validate(model, data, verbose=False)[0]
    assert {"val_loss", "val_bleu", "val_exact"} <= metrics.keys()
    assert len(data.encoded_split("train")) == 48 * 3 and len(data.encoded_split("validation")) == 8


def write_names(folder: Path, names: dict[str, list[str]], copies: int = 1) -> Path:
    folder.mkdir()
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["name", "language"])
        for _ in range(copies):
            writer.writerows([name, language] for language, rows in names.items() for name in rows)
    return folder


def test_validation_is_carved_with_a_fixed_seed(tmp_path):
    folder = write_names(tmp_path / "names", NAMES, copies=4)
    first = CategorySequenceDataModule(str(folder), label_column="language", text_column="name", val_fraction=0.25)
    second = CategorySequenceDataModule(str(folder), label_column="language", text_column="name", val_fraction=0.25)
    assert first.categories == ["Irish", "Japanese", "Russian"]
    assert first.splits["validation"]["name"] == second.splits["validation"]["name"]
    assert len(first.splits["validation"]) == 8 and len(first.splits["train"]) == 24


def test_a_checkpoint_generates_with_no_dataset_present(tmp_path, monkeypatch, capsys):
    folder = write_names(tmp_path / "names", NAMES, copies=4)
    data = CategorySequenceDataModule(str(folder), label_column="language", text_column="name", batch_size=8)
    model = Captioner(data.vocab_size, num_categories=3, hidden_size=16, cell="gru")
    Trainer(max_steps=3, default_root_dir=tmp_path, logger=False, enable_progress_bar=False).fit(model, data)
    checkpoint = next(tmp_path.rglob("*.ckpt"))
    expected = model.caption(["Russian", "Irish"], beam_size=2)
    shutil.rmtree(folder)
    restored = load_task(str(checkpoint))
    assert isinstance(restored, Captioner) and restored.categories == ["Irish", "Japanese", "Russian"]
    assert restored.caption(["Russian", "Irish"], beam_size=2) == expected
    capsys.readouterr()
    main(["caption", "--ckpt_path", str(checkpoint), "--condition", "Russian", "--beam_size", "2"])
    assert json.loads(capsys.readouterr().out) | {"score": 0} == {
        "condition": "Russian",
        "text": expected[0],
        "score": 0,
    }
    with pytest.raises(SystemExit):
        main(["caption", "--ckpt_path", str(checkpoint), "--condition", "Klingon"])
    assert "error: unknown category ['Klingon']" in capsys.readouterr().err  # the message, not a quoted repr
    with pytest.raises(SystemExit):
        main(["generate", "--ckpt_path", str(checkpoint)])
    assert "use rnnzoo caption" in capsys.readouterr().err


def test_the_model_overfits_a_few_real_names_per_language():
    """Three real names of each of four languages: after training, greedy generation gives one of them."""
    import datasets

    rows = datasets.load_dataset(str(shared_dataset("names")))["train"].to_pandas()
    chosen = {
        lang: rows[rows.language == lang].name.head(3).tolist() for lang in ["Russian", "Japanese", "Greek", "Irish"]
    }
    torch.manual_seed(0)
    tokenizer = char_tokenizer([n for names in chosen.values() for n in names])
    model = Captioner(len(tokenizer), num_categories=4, hidden_size=64, cell="lstm", embedding_size=16)
    model.data_state = DataState(tokenizer=tokenizer, labels=sorted(chosen), label_names=sorted(chosen))
    from rnnzoo.batches import CaptionBatch
    from rnnzoo.data.batching import pad_sequences

    pairs = [(model.categories.index(lang), name) for lang, names in chosen.items() for name in names]
    tokens, lengths = pad_sequences([torch.tensor([1, *tokenizer.encode(n).tolist(), 2]) for _, n in pairs])
    batch = CaptionBatch(torch.tensor([c for c, _ in pairs]), tokens, lengths, [[n] for _, n in pairs])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        optimizer.zero_grad()
        loss, _ = model._loss(batch)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.4  # per character: the 3 names of a language still share the first one
    for language, name in zip(model.categories, model.caption(model.categories), strict=True):
        assert name in chosen[language], (language, name)


def test_a_vector_condition_reaches_the_decoder_and_batches_like_one_by_one():
    torch.manual_seed(0)
    model = Captioner(len(char_tokenizer(["abc"])), "vector", feature_size=5, hidden_size=8, conditioning="first_input")
    model.tokenizer = char_tokenizer(["abc"])
    vectors = torch.randn(3, 5)
    logits = model.eval()(vectors, torch.tensor([[1, 3]] * 3))
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    assert model.caption(vectors, beam_size=2) == [model.caption(v, beam_size=2)[0] for v in vectors]
    with pytest.raises(ValueError, match=r"vector conditions must have shape \[batch, 5\]"):
        model.encode(torch.randn(2, 4))


def test_several_caption_columns_are_the_references_of_a_row(monkeypatch):
    from datasets import DatasetDict

    rows = shapes_split(4, seed=0)
    for k in range(3):
        rows = rows.add_column(f"caption_{k}", [refs[k] for refs in rows["captions"]])
    data = ImageCaptionDataModule("generated:shapes", caption_column=["caption_0", "caption_1", "caption_2"])
    monkeypatch.setattr(data, "raw_splits", lambda: DatasetDict({"train": rows, "validation": rows}))
    assert data.references("validation") == rows["captions"]
    assert len(data.encoded_split("train")) == 12 and len(data.encoded_split("validation")) == 4


def test_fit_the_shapes_recipe_then_caption_an_image_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = RECIPES / "captioning" / "shapes-lstm.yaml"
    quick = ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]
    main(["fit", "--config", str(recipe), *quick])
    checkpoint = str(next(tmp_path.rglob("last.ckpt")))
    write_ppm(tmp_path / "shape.ppm", draw_shape("circle", "red", "top").permute(2, 0, 1))
    capsys.readouterr()
    main(["caption", "--ckpt_path", checkpoint, "--image", str(tmp_path / "shape.ppm"), "--beam_size", "2"])
    result = json.loads(capsys.readouterr().out)
    model = load_task(checkpoint)
    assert result["condition"] == str(tmp_path / "shape.ppm")
    assert result["text"] == model.caption(str(tmp_path / "shape.ppm"), beam_size=2)[0]
    (tmp_path / "grey.ppm").write_bytes(b"P5\n32 32\n255\n" + bytes(32 * 32))
    with pytest.raises(SystemExit):
        main(["caption", "--ckpt_path", checkpoint, "--image", str(tmp_path / "grey.ppm")])
    assert "the image has 1 channel(s)" in capsys.readouterr().err


def test_an_image_column_without_images_is_one_clear_error(monkeypatch):
    from datasets import DatasetDict

    rows = shapes_split(4, seed=0).add_column("path", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    data = ImageCaptionDataModule("generated:shapes", image_column="path", caption_column="captions")
    monkeypatch.setattr(data, "raw_splits", lambda: DatasetDict({"train": rows, "validation": rows}))
    with pytest.raises(ValueError, match="row 0 of image column 'path' of split 'train' is not a usable image"):
        data.setup("fit")
