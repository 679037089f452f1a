"""Pruned SB3 features extractors that SB3 itself rebuilds when it loads a zip.

SB3 rebuilds a policy from ``policy_kwargs`` before loading its weights, and a features
extractor from its class and keyword arguments: NatureCNN takes no channel counts, so a
pruned one cannot be described to it. ``ResizedExtractor`` can: given in
``policy_kwargs["features_extractor_class"]`` with the original class, its arguments and
the pruned tensor shapes, it builds the original extractor and gives every tensor its
pruned shape, so the saved weights load into it (the zip then needs rlprune to load).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rlprune.layers import channelwise_layer

__all__ = ["ResizedExtractor", "extractor_shapes", "resized_settings"]


def extractor_shapes(extractor: nn.Module) -> dict[str, list[int]]:
    """The shape of every parameter and buffer of an extractor, by state-dict name."""
    return {name: list(t.shape) for name, t in extractor.state_dict().items()}


class ResizedExtractor:
    """A features extractor class whose instances are ``extractor_class`` instances with
    the tensors of ``shapes`` (what ``extractor_shapes`` recorded after pruning)."""

    def __new__(cls, observation_space, extractor_class: type, extractor_kwargs: dict,
                shapes: dict[str, list[int]]) -> nn.Module:
        extractor = extractor_class(observation_space, **extractor_kwargs)
        for name, shape in shapes.items():
            owner_name, _, attr = name.rpartition(".")
            owner = extractor.get_submodule(owner_name)
            tensor = getattr(owner, attr)
            if list(tensor.shape) != shape:
                empty = torch.empty(shape, dtype=tensor.dtype)
                setattr(owner, attr, nn.Parameter(empty) if isinstance(tensor, nn.Parameter)
                        else empty)
        for module in extractor.modules():
            _sync_sizes(module)
        linears = [m for m in extractor.modules() if isinstance(m, nn.Linear)]
        if linears and hasattr(extractor, "_features_dim"):
            extractor._features_dim = linears[-1].out_features
        return extractor


def _sync_sizes(module: nn.Module) -> None:
    """A layer's size attributes from its (resized) tensors."""
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, nn.modules.conv._ConvNd):
        module.out_channels = module.weight.shape[0]
        module.in_channels = module.weight.shape[1] * module.groups
    elif isinstance(module, nn.LayerNorm) and module.weight is not None:
        module.normalized_shape = tuple(module.weight.shape)
    elif (spec := channelwise_layer(module)) is not None:
        first = next(getattr(module, n) for n in spec.tensors if getattr(module, n) is not None)
        setattr(module, spec.width, first.shape[0])


def resized_settings(extractor: nn.Module, extractor_class: type,
                     extractor_kwargs: dict[str, Any],
                     observation_space) -> dict[str, Any] | None:
    """``policy_kwargs`` entries that rebuild ``extractor`` as pruned, or None when it has
    the shapes its class builds anyway (the zip then loads without rlprune)."""
    if extractor_class is ResizedExtractor:  # pruned before: back to the original class
        extractor_class = extractor_kwargs["extractor_class"]
        extractor_kwargs = extractor_kwargs["extractor_kwargs"]
    shapes = extractor_shapes(extractor)
    if shapes == extractor_shapes(extractor_class(observation_space, **extractor_kwargs)):
        return None
    return {"features_extractor_class": ResizedExtractor,
            "features_extractor_kwargs": {"extractor_class": extractor_class,
                                          "extractor_kwargs": dict(extractor_kwargs),
                                          "shapes": shapes}}
