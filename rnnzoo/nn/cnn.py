"""The captioner's image encoders: a small built-in CNN, or the convolutional trunk of a torchvision model.

Both map ``[B, C, H, W]`` images to ``[B, channels, h, w]`` feature maps whose cells
attention reads. A torchvision trunk keeps the parameter names of the full model, so
the weights file torchvision downloads (or ``torch.save(model.state_dict())``) loads
into it by name (:func:`load_encoder_weights`); torchvision itself is an optional
extra (``pip install 'rnnzoo[vision]'``), imported only when such an encoder is built.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import Tensor, nn

from rnnzoo.errors import preview

TORCHVISION_PREFIX = "torchvision:"


class SmallCNN(nn.Module):
    """Three ``conv 3x3 -> batch norm -> ReLU -> max-pool 2`` blocks: ``[B, C, H, W] -> [B, channels, H/8, W/8]``.

    Args:
        in_channels: channels of the input images.
        channels: channels of every block.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for block in range(3):
            conv = nn.Conv2d(in_channels if block == 0 else channels, channels, 3, padding=1)
            blocks += [conv, nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
        self.layers = nn.Sequential(*blocks)

    def forward(self, images: Tensor) -> Tensor:
        """Spatial feature maps of ``images``."""
        return self.layers(images)


def torchvision_trunk(name: str) -> nn.Module:
    """The convolutional trunk of torchvision model ``name`` (no pooling, no classifier), randomly initialised.

    ResNets (``resnet18`` ... ``resnet152``, ``resnext*``, ``wide_resnet*``) keep the layers before their
    average pooling; models with a ``features`` block (VGG, AlexNet, MobileNet, EfficientNet, DenseNet,
    ConvNeXt, SqueezeNet) keep that block, under its own name.

    Raises:
        ImportError: without a torchvision that imports beside this torch.
        ValueError: for a name torchvision does not know, or a model without such a trunk.
    """
    try:
        from torchvision import models
    except (ImportError, RuntimeError) as error:  # RuntimeError: a torchvision built for another torch
        raise ImportError(
            f"encoder '{TORCHVISION_PREFIX}{name}' needs torchvision built for torch {torch.__version__} "
            f"(pip install 'rnnzoo[vision]'); importing it failed: {error}"
        ) from error
    known = models.list_models(module=models)
    if name not in known:
        raise ValueError(f"torchvision has no image model {name!r}; its models: {preview(known)}")
    model = models.get_model(name, weights=None)
    if isinstance(model, models.ResNet):
        children = list(model.named_children())
        return nn.Sequential(OrderedDict(children[: [n for n, _ in children].index("avgpool")]))
    if isinstance(getattr(model, "features", None), nn.Module):
        return nn.Sequential(OrderedDict(features=model.features))
    raise ValueError(
        f"torchvision's {name!r} has no convolutional trunk rnnzoo can take (a ResNet's layers or a `features` "
        "block): use a ResNet, VGG, MobileNet, EfficientNet, DenseNet or ConvNeXt"
    )


def feature_map_shape(encoder: nn.Module, channels: int, size: int) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the feature map ``encoder`` makes of a ``channels x size x size`` image.

    Raises:
        ValueError: when ``encoder`` cannot read such an image (too small for its poolings, other channels).
    """
    was_training = encoder.training
    encoder.eval()  # batch-norm statistics must not move for a shape probe
    try:
        with torch.no_grad():
            maps = encoder(torch.zeros(1, channels, size, size))
    except RuntimeError as error:
        raise ValueError(
            f"the image encoder cannot read {channels}-channel {size}x{size} images ({error}); "
            "raise image_size (torchvision models halve it five times) or set image_channels to what it reads"
        ) from None
    finally:
        encoder.train(was_training)
    if maps.dim() != 4 or 0 in maps.shape:
        raise ValueError(f"the image encoder makes {list(maps.shape)} of a {size}x{size} image: raise image_size")
    return tuple(maps.shape[1:])


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> int:
    """Fill ``encoder`` from a state-dict file by parameter name; entries it lacks (a classifier) are skipped.

    Args:
        encoder: the image encoder (a :func:`torchvision_trunk` reads the full model's file).
        path: a ``.pth`` / ``.pt`` file of ``torch.save(state_dict)`` (what torchvision downloads) or ``.safetensors``.

    Returns:
        The number of tensors loaded.

    Raises:
        FileNotFoundError: when there is no file.
        ValueError: for a file that misses some of the encoder's tensors or holds them in another shape.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no encoder weights file at {path!r}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} holds a {type(state).__name__}, not a state dict (name -> tensor)")
    wanted = encoder.state_dict()
    missing = [name for name in wanted if name not in state]
    if missing:
        raise ValueError(
            f"{path!r} lacks {len(missing)} of the encoder's {len(wanted)} tensors ({preview(missing)}): "
            "it holds the weights of another model; give the state dict of the encoder's model"
        )
    wrong = [
        f"{n} {list(state[n].shape)} (wants {list(t.shape)})" for n, t in wanted.items() if state[n].shape != t.shape
    ]
    if wrong:
        raise ValueError(f"{path!r} holds tensors of other shapes: {preview(wrong)}; it is another model's")
    encoder.load_state_dict({name: state[name] for name in wanted})
    return len(wanted)
