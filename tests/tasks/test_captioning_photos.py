"""Captioning on real photos: the 12 COCO JPEGs of ../shared/data/coco_captions_mini, decoded by Pillow."""

from __future__ import annotations

import importlib.util
import io

import pytest
import torch
from conftest import quiet_trainer, shared_dataset
from datasets import Dataset, DatasetDict
from datasets import Image as HFImage

from rnnzoo import Captioner, ImageCaptionDataModule
from rnnzoo.images import load_image, prepare_image
from rnnzoo.metrics import BLEU

SIZE = 64


def coco_module() -> ImageCaptionDataModule:
    """The COCO smoke-test set; its one 12-photo split trains, validates and tests (not a measurement)."""
    folder = shared_dataset("coco_captions_mini")
    splits = {f"{role}_split": "test" for role in ("train", "val", "test")}
    return ImageCaptionDataModule(str(folder), caption_column="captions", image_size=SIZE, batch_size=12, **splits)


def test_real_photos_decode_train_caption_and_score_against_five_references(tmp_path):
    pytest.importorskip("PIL", reason="decoding JPEG photos needs Pillow: pip install 'rnnzoo[image]'")
    data = coco_module()
    folder = shared_dataset("coco_captions_mini") / "raw" / "example_images"
    photos = [str(folder / name) for name in data.rows("test")["image_name"]]
    # The parquet's JPEG bytes, decoded and resized, equal what inference makes of the photo's file.
    for image, photo in zip(data.images("test"), photos, strict=True):
        assert image.shape == (3, SIZE, SIZE)
        torch.testing.assert_close(image, prepare_image(load_image(photo), SIZE), atol=1e-5, rtol=0)

    torch.manual_seed(0)
    model = Captioner(data.vocab_size, "image", image_size=SIZE, attention=True, cnn_channels=8, hidden_size=32)
    before = {name: weight.detach().clone() for name, weight in model.named_parameters()}
    trainer = quiet_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, data)
    assert trainer.global_step == 2
    assert any(not torch.equal(before[name], weight) for name, weight in model.named_parameters())

    captions = model.caption(photos, beam_size=2)
    vocabulary = {data.tokenizer.id_to_token(index) for index in range(len(data.tokenizer))}
    assert len(captions) == 12 and all(set(caption.split()) <= vocabulary for caption in captions)
    references = [[" ".join(data.tokenizer.words(ref)) for ref in refs] for refs in data.references("test")]
    assert all(len(refs) == 5 for refs in references)
    bleu = BLEU(n_gram=4)
    bleu.update(captions, references)
    assert 0.0 <= float(bleu.compute()) <= 100.0
    # The scorer reads all five: each photo's first reference, scored against its five, is a perfect match.
    oracle = BLEU(n_gram=4)
    oracle.update([refs[0] for refs in references], references)
    assert float(oracle.compute()) == pytest.approx(100.0)


def jpeg_splits(mode: str) -> DatasetDict:
    """Two 20x24 JPEGs in Pillow ``mode`` with a caption each, as every split."""
    from PIL import Image

    files = []
    for shade in (40, 200):
        buffer = io.BytesIO()
        Image.new(mode, (24, 20), shade if mode == "L" else (shade, 0, 0)).save(buffer, "JPEG")
        files.append({"bytes": buffer.getvalue(), "path": None})
    rows = Dataset.from_dict({"image": files, "caption": ["a dark box", "a light box"]})
    rows = rows.cast_column("image", HFImage())
    return DatasetDict({"train": rows, "validation": rows, "test": rows})


def test_a_greyscale_jpeg_becomes_the_rgb_image_inference_reads(tmp_path, monkeypatch):
    pytest.importorskip("PIL", reason="decoding JPEG photos needs Pillow: pip install 'rnnzoo[image]'")
    splits = jpeg_splits("L")
    data = ImageCaptionDataModule("photos", image_size=16)
    monkeypatch.setattr(data, "raw_splits", lambda: splits)
    images = data.images("train")
    path = tmp_path / "grey.jpg"
    path.write_bytes(splits["train"].cast_column("image", HFImage(decode=False))[0]["image"]["bytes"])
    assert images[0].shape == (3, 16, 16)
    torch.testing.assert_close(images[0], prepare_image(load_image(path), 16), atol=1e-5, rtol=0)


def test_encoded_images_without_pillow_are_one_clear_error(monkeypatch):
    pytest.importorskip("PIL", reason="the JPEGs of this test are written with Pillow")
    data = ImageCaptionDataModule("photos")
    monkeypatch.setattr(data, "raw_splits", lambda: jpeg_splits("RGB"))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "PIL" else find_spec(name))
    with pytest.raises(ImportError, match=r"image column 'image' holds encoded images.*rnnzoo\[image\]"):
        data.setup("fit")
