"""Where a captioner looks: attention maps of a caption over its image, and ``rnnzoo caption --plot``."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import quiet_trainer

from rnnzoo import Captioner, ImageCaptionDataModule
from rnnzoo.cli import main
from rnnzoo.data.shapes import draw_shape, shapes_dataset
from rnnzoo.images import write_ppm
from rnnzoo.tokenizers import special_ids


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Captioner, str, str]:
    """A shapes captioner with attention after a few steps, its checkpoint and a shape image file."""
    folder = tmp_path_factory.mktemp("attention")
    data = ImageCaptionDataModule("generated:shapes", caption_column="captions", batch_size=16)
    data.raw_splits = lambda: shapes_dataset(48, 8, 8)
    torch.manual_seed(0)
    model = Captioner(data.vocab_size, "image", attention=True, cnn_channels=8, hidden_size=16, embedding_size=8)
    trainer = quiet_trainer(folder, max_steps=6, limit_val_batches=0)
    trainer.fit(model, data)
    checkpoint = str(folder / "model.ckpt")
    trainer.save_checkpoint(checkpoint)
    image = str(folder / "shape.ppm")
    write_ppm(image, draw_shape("square", "green", "left").permute(2, 0, 1))
    return model.eval(), checkpoint, image


def test_the_map_of_a_generated_caption_is_the_attention_it_was_generated_with(trained):
    model, _, image = trained
    caption = model.caption(image, max_length=8)[0]
    words, weights = model.attention_map(image, caption)
    assert words == [*caption.split(), "<eos>"]
    assert weights.shape == (len(words), 4, 4)  # 32x32 images, the CNN's three halvings
    torch.testing.assert_close(weights.sum((1, 2)), torch.ones(len(words)))
    # Oracle: decode the caption one token at a time, as generation does, and keep each step's weights.
    tokenizer = model.tokenizer
    _, bos, eos = special_ids(tokenizer)
    ids = tokenizer.encode(caption).tolist()
    with model.inference():
        state = model.encode(model.encode_inputs([image]).condition)
        for position, token in enumerate([bos, *ids]):
            logits, _ = model.step(torch.tensor([token]), state)
            _, state, step_weights = model.decode_attending(torch.tensor([[token]]), state)
            torch.testing.assert_close(step_weights[0, 0].view(4, 4), weights[position])
            # Greedy chose this caption: each step's best token is its next word.
            assert int(logits[0].argmax()) == [*ids, eos][position] or position == len(ids)


def test_a_human_caption_gets_a_map_too_and_a_model_without_attention_says_why(trained):
    model, _, image = trained
    words, weights = model.attention_map(image, "a green square on the left")
    assert words == ["a", "green", "square", "on", "the", "left", "<eos>"] and weights.shape == (7, 4, 4)
    plain = Captioner(model.hparams.vocab_size, "image", cnn_channels=8, hidden_size=16)
    plain.tokenizer = model.tokenizer
    with pytest.raises(ValueError, match="no attention.*attention: true"):
        plain.attention_map(image, "a green square")


def test_plot_attention_writes_one_panel_per_word(trained, tmp_path):
    pytest.importorskip("matplotlib", reason="drawing figures needs matplotlib: pip install 'rnnzoo[plot]'")
    from matplotlib import image as mpimg

    model, _, image = trained
    path = model.plot_attention(image, "a green square on the left", tmp_path / "attention.png")
    assert path == str(tmp_path / "attention.png")
    pixels = mpimg.imread(path)
    # The image and seven words: eight panels on two rows of five, each 2.4 inches at 100 dpi.
    assert pixels.shape[:2] == (480, 1200) and pixels[..., :3].std() > 0.05


def test_caption_plot_on_the_command_line(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="drawing figures needs matplotlib: pip install 'rnnzoo[plot]'")
    model, checkpoint, image = trained
    figure = str(tmp_path / "where.png")
    capsys.readouterr()
    main(["caption", "--ckpt_path", checkpoint, "--image", image, "--plot", figure])
    result = json.loads(capsys.readouterr().out)
    assert result["plot"] == figure and result["text"] == model.caption(image)[0]
    assert open(figure, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main(["caption", "--ckpt_path", checkpoint, "--image", image, "--image+", image, "--plot", figure])
    assert "--plot draws the attention of one caption over one image" in capsys.readouterr().err
