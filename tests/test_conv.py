"""Convolutional networks (pixel encoders, CleanRL's Atari nets): filters grouped on
torch-pruning's graph through batch norms and the flatten into the first Linear; masked
equals physical, and the cost and latency models count what the pruned network holds."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rlprune import ComponentGrouper, prune_physically
from rlprune.adapters import ModuleAdapter
from rlprune.pruning.importance import collect_channel_stats, make_importance
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.pruning.masking import ChannelMasks
from tests.test_core import random_plan


def _cnn(channels: list[int], batch_norm: bool, hidden: int, seed: int) -> tuple[nn.Module,
                                                                                 int]:
    """conv (k3, stride 2 first) [-> BN] -> ReLU ... -> flatten -> Linear -> ReLU -> Linear."""
    torch.manual_seed(seed)
    layers, prev, size = [], 3, 16
    for i, c in enumerate(channels):
        stride = 2 if i == 0 else 1
        layers += [nn.Conv2d(prev, c, 3, stride=stride)]
        layers += [nn.BatchNorm2d(c)] if batch_norm else []
        layers += [nn.ReLU()]
        prev, size = c, (size - 3) // stride + 1
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(prev * size * size, hidden),
                        nn.ReLU(), nn.Linear(hidden, 4))
    with torch.no_grad():  # batch norms with statistics of their own, as after training
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.eval(), size


def _flops(net: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of Linear and conv layers counted by running the network (2 per multiply-add)."""
    total = 0

    def count(m, args, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += 2 * m.in_channels * m.out_channels * math.prod(m.kernel_size) * \
                math.prod(out.shape[2:])
        else:
            total += 2 * m.in_features * m.out_features

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return total


@settings(max_examples=15, deadline=None, derandomize=True)
@given(channels=st.lists(st.integers(4, 12), min_size=1, max_size=3),
       batch_norm=st.booleans(), hidden=st.integers(4, 16), seed=st.integers(0, 10_000),
       rho=st.floats(0.1, 0.6))
def test_masked_equals_physical_on_random_cnns(channels, batch_norm, hidden, seed, rho):
    net, _ = _cnn(channels, batch_norm, hidden, seed)
    adapter = ModuleAdapter(net, torch.randn(1, 3, 16, 16))
    grouper = ComponentGrouper(adapter)
    assert len(grouper.groups) == len(channels) + 1  # every conv's filters, the hidden Linear
    plan = random_plan(grouper, rho, seed)
    if plan is None:
        return
    x = torch.randn(5, 3, 16, 16)
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = net(x)
    physical = prune_physically(adapter, plan).modules["model"]
    torch.testing.assert_close(masked, physical(x), rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in physical.parameters()) == plan.cost.params
    assert _flops(physical, x[:1]) == plan.cost.flops


def test_the_flatten_carries_every_position_of_a_removed_filter():
    net, size = _cnn([6], batch_norm=True, hidden=8, seed=0)
    grouper = ComponentGrouper(ModuleAdapter(net, torch.randn(1, 3, 16, 16)))
    conv = next(g for g in grouper.groups if g.root == "0")
    reader = next(r for r in conv.layers if r.name == "4")  # the Linear after the flatten
    assert reader.spread(conv.channels) == size * size
    assert reader.indices([2]) == list(range(2 * size * size, 3 * size * size))
    assert {r.name: r.role for r in conv.layers} == {"0": "out", "1": "channel", "4": "in"}


def test_latency_model_times_convolutions_at_their_pruned_widths():
    net, _ = _cnn([16, 16], batch_norm=True, hidden=32, seed=1)
    adapter = ModuleAdapter(net, torch.randn(1, 3, 16, 16), policy="model")
    grouper = ComponentGrouper(adapter)
    model = LatencyModel(grouper, LayerTimes(threads=1))
    half = {g.id: g.channels // 2 for g in grouper.groups}
    assert model.compute(half) > 0
    # the conv layers' table entries are keyed by their pruned channel counts
    assert any(key[:3] == ("Conv2d", 8, 8) for key in model.times._seconds)


def test_activation_importance_of_filters_reads_every_position_of_their_consumers():
    net, size = _cnn([6], batch_norm=False, hidden=8, seed=2)
    adapter = ModuleAdapter(net, torch.randn(1, 3, 16, 16))
    grouper = ComponentGrouper(adapter)
    x = torch.randn(32, 3, 16, 16)
    stats = collect_channel_stats(grouper, {"model": x})
    group = next(g for g in grouper.groups if g.root == "0")
    # the Linear after the flatten reads each filter at size x size positions
    feature_maps = net[:2](x).abs().sum((2, 3)).mean(0)
    torch.testing.assert_close(make_importance("activation", stats)(group.tp_group),
                               feature_maps)
    linear = net[3].weight.reshape(8, 6, size * size)
    weighted = make_importance("activation_weight", stats)(group.tp_group)
    per_position = net[:2](x).abs().mean(0).flatten(1) * linear.norm(dim=0)
    torch.testing.assert_close(weighted, per_position.sum(1))
