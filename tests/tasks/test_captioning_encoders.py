"""Image encoders of the captioner: ``encoder: torchvision:NAME`` and weights from a local file.

torchvision is an optional extra that does not import here (the PyPI wheel is built for the CUDA
torch), so most tests stand in a two-model fake ``torchvision`` with torchvision's layer names;
the test of the real one skips without it.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
from conftest import quiet_trainer
from torch import nn

from rnnzoo import Captioner, ImageCaptionDataModule, load_task
from rnnzoo.data.shapes import shapes_dataset
from rnnzoo.nn.cnn import feature_map_shape, load_encoder_weights, torchvision_trunk


class ResNet(nn.Module):
    """A two-block stand-in for torchvision's ResNet, with its layer names and order."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 10)

    def forward(self, images):
        maps = self.layer1(self.relu(self.bn1(self.conv1(images))))
        return self.fc(torch.flatten(self.avgpool(maps), 1))


class VGG(nn.Module):
    """A stand-in for torchvision's VGG: a ``features`` block and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))
        self.classifier = nn.Linear(6, 10)


class VisionTransformer(nn.Module):
    """A model without a convolutional trunk."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.Linear(4, 10)


MODELS = {"resnet_tiny": ResNet, "vgg_tiny": VGG, "vit_tiny": VisionTransformer}


@pytest.fixture
def fake_torchvision(monkeypatch):
    models = types.SimpleNamespace(
        ResNet=ResNet,
        list_models=lambda module=None: sorted(MODELS),
        get_model=lambda name, weights=None: MODELS[name](),
    )
    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(models=models))


def shapes_module() -> ImageCaptionDataModule:
    data = ImageCaptionDataModule("generated:shapes", caption_column="captions", batch_size=16)
    data.raw_splits = lambda: shapes_dataset(32, 4, 4)
    return data


def test_a_resnet_trunk_is_the_model_up_to_its_pooling_and_reads_the_full_models_file(fake_torchvision, tmp_path):
    torch.manual_seed(0)
    full = ResNet().eval()
    torch.save(full.state_dict(), tmp_path / "resnet_tiny.pth")  # fc included, as torchvision's files are
    trunk = torchvision_trunk("resnet_tiny")
    assert list(dict(trunk.named_children())) == ["conv1", "bn1", "relu", "layer1"]
    assert load_encoder_weights(trunk, tmp_path / "resnet_tiny.pth") == len(trunk.state_dict())
    images = torch.randn(2, 3, 32, 32)
    maps = trunk.eval()(images)
    assert feature_map_shape(trunk, 3, 32) == (12, 8, 8)
    torch.testing.assert_close(full.fc(torch.flatten(full.avgpool(maps), 1)), full(images))


def test_a_features_trunk_keeps_its_name_so_the_file_loads(fake_torchvision, tmp_path):
    full = VGG()
    torch.save(full.state_dict(), tmp_path / "vgg_tiny.pth")
    trunk = torchvision_trunk("vgg_tiny")
    load_encoder_weights(trunk, tmp_path / "vgg_tiny.pth")
    images = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(trunk(images), full.features(images))


def test_a_frozen_pretrained_encoder_trains_the_decoder_only_and_checkpoints_never_need_the_file(
    fake_torchvision, tmp_path
):
    torch.manual_seed(1)
    pretrained = ResNet()
    pretrained.bn1.running_mean.uniform_(-1, 1)  # statistics that a training-mode batch norm would move
    weights = tmp_path / "resnet_tiny.pth"
    torch.save(pretrained.state_dict(), weights)
    data = shapes_module()
    model = Captioner(
        data.vocab_size, "image", encoder="torchvision:resnet_tiny", encoder_weights=str(weights),
        freeze_encoder=True, attention=True, hidden_size=16, embedding_size=8,
    )  # fmt: skip
    assert model.map_size == (8, 8) and model.attention.key.in_features == 12
    decoder_before = model.head.weight.detach().clone()
    trainer = quiet_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, data)
    for name, tensor in pretrained.state_dict().items():
        if not name.startswith("fc."):
            torch.testing.assert_close(model.cnn.state_dict()[name], tensor)  # loaded, then kept
    assert not model.cnn.training and not torch.equal(model.head.weight, decoder_before)
    assert model.data_state.options["encoder_weights"] == {"file": "resnet_tiny.pth", "tensors": 9}
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    weights.unlink()  # the checkpoint holds the encoder's weights
    loaded = load_task(tmp_path / "model.ckpt")
    torch.testing.assert_close(loaded.cnn.state_dict(), model.cnn.state_dict())
    assert loaded.load_encoder_weights() is None  # already loaded: a resumed fit keeps the trained weights


def test_encoder_mistakes_are_clear_errors(fake_torchvision, tmp_path):
    with pytest.raises(ValueError, match=r"torchvision has no image model 'resnet_huge'; its models: \['resnet_tiny'"):
        torchvision_trunk("resnet_huge")
    with pytest.raises(ValueError, match="'vit_tiny' has no convolutional trunk"):
        torchvision_trunk("vit_tiny")
    with pytest.raises(ValueError, match="encoder must be 'cnn' or 'torchvision:NAME'"):
        Captioner(10, "image", encoder="resnet18")
    with pytest.raises(ValueError, match="condition='vector' has none"):
        Captioner(10, "vector", feature_size=4, encoder="torchvision:resnet_tiny")
    with pytest.raises(ValueError, match="cannot read 3-channel 2x2 images.*raise image_size"):
        Captioner(10, "image", encoder="torchvision:vgg_tiny", image_size=2)
    torch.save(VGG().state_dict(), tmp_path / "vgg.pth")
    with pytest.raises(ValueError, match=r"lacks 9 of the encoder's 9 tensors \(\['conv1.weight'"):
        load_encoder_weights(torchvision_trunk("resnet_tiny"), tmp_path / "vgg.pth")
    with pytest.raises(FileNotFoundError, match="no encoder weights file"):
        load_encoder_weights(torchvision_trunk("resnet_tiny"), tmp_path / "missing.pth")


def test_without_a_working_torchvision_the_encoder_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # importing it raises ImportError
    with pytest.raises(ImportError, match=r"encoder 'torchvision:resnet18' needs torchvision.*rnnzoo\[vision\]"):
        Captioner(10, "image", encoder="torchvision:resnet18")


def test_the_real_torchvision_resnet18_trunk(tmp_path):
    try:
        from torchvision import models
    except (ImportError, RuntimeError) as error:  # the CUDA wheel beside a CPU torch fails with RuntimeError
        pytest.skip(f"torchvision does not import here: {error}")
    torch.manual_seed(0)
    full = models.resnet18(weights=None).eval()
    torch.save(full.state_dict(), tmp_path / "resnet18.pth")
    model = Captioner(
        10, "image", encoder="torchvision:resnet18", encoder_weights=str(tmp_path / "resnet18.pth"),
        image_size=64, attention=True, hidden_size=16,
    )  # fmt: skip
    assert model.load_encoder_weights() == len(model.cnn.state_dict()) and model.map_size == (2, 2)
    images = torch.randn(2, 3, 64, 64)
    maps = model.cnn.eval()(images)
    torch.testing.assert_close(full.fc(torch.flatten(full.avgpool(maps), 1)), full(images))
