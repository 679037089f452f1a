"""Grouping, ranking, masks, physical pruning and accounting on real networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch_pruning as tp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rlprune.adapters.module import ModuleAdapter
from rlprune.adapters.tdmpc2 import TDMPC2Adapter
from rlprune.pruning.accounting import CostModel
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.importance import collect_channel_stats, make_importance
from rlprune.pruning.masking import ChannelMasks
from rlprune.pruning.physical import prune_physically
from rlprune.pruning.ranking import ChannelRanking, Coefficients, InfeasibleTarget
from tdmpc2 import model_config_for
from tests.conftest import small_tdmpc2


@pytest.fixture(scope="module")
def tdmpc2_adapter():
    return small_tdmpc2(model_config_for("cpu", obs_dim=5, action_dim=1), noise=0.05)


def ranking_for(grouper, criterion="l2", **kwargs):
    imp = make_importance(criterion)
    return ChannelRanking(grouper, {g.id: imp(g.tp_group) for g in grouper.groups}, **kwargs)


def random_plan(grouper, rho: float, seed: int):
    """A plan at ``rho`` (within 0.5) from random importance and random coefficients, or
    None where the protected structure cannot reach it."""
    coefficients = Coefficients([g.id for g in grouper.groups],
                                torch.rand(len(grouper.groups), generator=torch.Generator()
                                           .manual_seed(seed)) + 0.1)
    try:
        return ranking_for(grouper, "random").plan(coefficients, rho, 0.5)
    except InfeasibleTarget:
        return None


def ones(grouper):
    return Coefficients([g.id for g in grouper.groups])


def test_tdmpc2_has_one_group_per_hidden_layer_and_none_cross_components(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter)
    assert len(grouper.groups) == 17  # encoder 1, dynamics 2, reward 2, pi 2, 5 Q x 2
    per_component = {}
    for g in grouper.groups:
        per_component[g.component] = per_component.get(g.component, 0) + 1
        assert g.id.startswith(g.component + "/")
        assert g.channels == 256
        assert {r.role for r in g.layers} == {"out", "norm", "in"}
    assert per_component == {"encoder": 1, "dynamics": 2, "reward": 2, "pi": 2,
                             **{f"Q{i}": 2 for i in range(5)}}
    # Protected output layers never lose output channels.
    for name, comp in tdmpc2_adapter.components().items():
        out_layer = [n for n, m in comp.module.named_modules() if m is comp.output_layers[0]][0]
        assert not any(r.name == out_layer and r.role == "out"
                       for g in grouper.groups if g.component == name for r in g.layers)


def test_tdmpc2_value_heads_read_out_the_values_the_planner_uses(tdmpc2_adapter):
    model = tdmpc2_adapter.agent.model
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(6, 5)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(6, 1)).astype(np.float32)
    components = tdmpc2_adapter.components()
    inputs = tdmpc2_adapter.component_inputs(obs, actions)
    z = model.encode(torch.as_tensor(obs))
    with torch.no_grad():
        q = components["Q1"].readout(components["Q1"].module(inputs["Q1"]))
        q_pair = components["Q3"].readout(components["Q3"].module(inputs["Q3"]))
        planner_q = model.q_value(z, torch.as_tensor(actions), torch.tensor([1, 3]))
        torch.testing.assert_close((q + q_pair) / 2, planner_q)
        reward = components["reward"].readout(components["reward"].module(inputs["reward"]))
        assert reward.shape == (6, 1)
    assert components["pi"].readout is None and components["dynamics"].readout is None


def test_grouper_rejects_unknown_or_empty_components(tdmpc2_adapter):
    with pytest.raises(ValueError, match="unknown components"):
        ComponentGrouper(tdmpc2_adapter, ["policy"])
    with pytest.raises(ValueError, match="at least one"):
        ComponentGrouper(tdmpc2_adapter, [])


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
def test_plans_hit_target_and_physical_model_matches_accounting(tdmpc2_adapter, rho):
    grouper = ComponentGrouper(tdmpc2_adapter)
    plan = ranking_for(grouper).plan(ones(grouper), rho, 0.01)
    assert abs(plan.sparsity - rho) <= 0.01
    pruned = prune_physically(tdmpc2_adapter, plan)
    params = sum(p.numel() for c in pruned.components().values() for p in c.module.parameters())
    assert params == plan.cost.params
    dense = sum(p.numel() for c in tdmpc2_adapter.components().values()
                for p in c.module.parameters())
    assert dense == plan.dense.params  # the original is untouched
    obs = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    assert pruned.act(obs).shape == (3, 1)


def test_masked_and_physically_pruned_tdmpc2_agree(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter)
    plan = ranking_for(grouper, "random").plan(ones(grouper), 0.5, 0.02)
    rng = np.random.default_rng(1)
    inputs = tdmpc2_adapter.component_inputs(rng.normal(size=(16, 5)),
                                             rng.uniform(-1, 1, size=(16, 1)))
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = {n: c.module(inputs[n]) for n, c in tdmpc2_adapter.components().items()}
        masks.clear()
        dense = {n: c.module(inputs[n]) for n, c in tdmpc2_adapter.components().items()}
    pruned = prune_physically(tdmpc2_adapter, plan)
    physical = {n: c.module(inputs[n]) for n, c in pruned.components().items()}
    after = {n: c.module(inputs[n]) for n, c in tdmpc2_adapter.components().items()}
    for name in masked:
        torch.testing.assert_close(masked[name], physical[name], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(after[name], dense[name], rtol=0, atol=0)  # hooks removed
        assert not torch.allclose(masked[name], dense[name])


def test_all_ones_l2_equals_torch_pruning_global_magnitude_pruner():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 40), nn.LayerNorm(40), nn.Mish(), nn.Linear(40, 30),
                        nn.LayerNorm(30), nn.Mish(), nn.Linear(30, 2))
    x = torch.randn(1, 6)
    reference = ModuleAdapter(net, x).clone()
    pruner = tp.pruner.MagnitudePruner(
        reference.modules["model"], x, importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.4, global_pruning=True,
        ignored_layers=[reference.modules["model"][6]])
    pruner.step()
    tp_removed = {name: sorted(idxs) for name, is_out, idxs in pruner.DG.pruning_history()
                  if is_out}
    tp_params = sum(p.numel() for p in reference.modules["model"].parameters())
    ours = ModuleAdapter(net, x)
    grouper = ComponentGrouper(ours)
    rho = 1 - tp_params / sum(p.numel() for p in net.parameters())
    plan = ranking_for(grouper).plan(ones(grouper), rho, 1e-9)
    assert {gid.split("/")[1]: list(idxs) for gid, idxs in plan.removed.items()} == tp_removed


ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Mish, nn.GELU, nn.SiLU, nn.ELU, nn.Sigmoid]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(in_dim=st.integers(2, 8), widths=st.lists(st.integers(4, 24), min_size=1, max_size=3),
       layer_norm=st.booleans(), act=st.sampled_from(ACTIVATIONS), seed=st.integers(0, 10_000),
       rho=st.floats(0.05, 0.6))
def test_masked_equals_physical_on_random_mlps(in_dim, widths, layer_norm, act, seed, rho):
    torch.manual_seed(seed)
    layers, prev = [], in_dim
    for w in widths:
        layers += [nn.Linear(prev, w)] + ([nn.LayerNorm(w)] if layer_norm else []) + [act()]
        prev = w
    net = nn.Sequential(*layers, nn.Linear(prev, 3))
    with torch.no_grad():  # affine LayerNorm parameters away from their init
        for m in net.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    adapter = ModuleAdapter(net, torch.randn(1, in_dim))
    grouper = ComponentGrouper(adapter)
    plan = random_plan(grouper, rho, seed)
    if plan is None:
        return
    x = torch.randn(9, in_dim)
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = net(x)
    physical = prune_physically(adapter, plan).modules["model"]
    torch.testing.assert_close(masked, physical(x), rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in physical.parameters()) == plan.cost.params


def test_round_to_keeps_multiples(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter)
    plan = ranking_for(grouper, round_to=16).plan(ones(grouper), 0.5, 0.02)
    for g in grouper.groups:
        kept = g.channels - len(plan.removed.get(g.id, ()))
        assert kept % 16 == 0


def test_soft_masks_that_underflow_to_zero_stay_finite(tdmpc2_adapter):
    """The gradient search's sigmoids can reach exactly 0 on a whole group; a masked
    LayerNorm must not divide 0 by 0 there."""
    grouper = ComponentGrouper(tdmpc2_adapter, interfaces=("latent",))
    rng = np.random.default_rng(0)
    inputs = tdmpc2_adapter.component_inputs(rng.normal(size=(4, 5)).astype(np.float32),
                                             rng.uniform(-1, 1, (4, 1)).astype(np.float32))
    with ChannelMasks(grouper) as masks:
        masks.set_masks({g.id: torch.zeros(g.channels) for g in grouper.groups})
        for name, component in tdmpc2_adapter.components().items():
            assert torch.isfinite(component.module(inputs[name])).all(), name


def test_coefficients_steer_which_groups_lose_channels(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter)
    ranking = ranking_for(grouper)
    protect_pi = Coefficients.from_dict([g.id for g in grouper.groups],
                                        {"pi/0": 50.0, "pi/3": 50.0})
    plan = ranking.plan(protect_pi, 0.5, 0.01)
    assert abs(plan.sparsity - 0.5) <= 0.01
    assert "pi/0" not in plan.removed and "pi/3" not in plan.removed
    assert plan.component_sparsity()["pi"] == 0.0


def test_bad_targets_give_clear_errors(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter)
    ranking = ranking_for(grouper)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        ranking.plan(ones(grouper), 1.2, 0.01)
    with pytest.raises(ValueError, match=r"tol must be in \[0, 1\)"):
        ranking.plan(ones(grouper), 0.5, -0.1)
    with pytest.raises(InfeasibleTarget, match="allows at most"):
        ranking.plan(ones(grouper), 0.999, 0.0001)
    with pytest.raises(InfeasibleTarget, match="nearest reachable"):
        ranking_for(grouper, round_to=128).plan(ones(grouper), 0.3, 0.0001)
    with pytest.raises(ValueError, match="finite and >= 0"):
        Coefficients([g.id for g in grouper.groups], -torch.ones(len(grouper.groups)))
    with pytest.raises(ValueError, match="unknown groups"):
        Coefficients.from_dict([g.id for g in grouper.groups], {"nope/0": 1.0})


def test_activation_importance_is_mean_abs_input_of_consumer(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter, ["pi"])
    rng = np.random.default_rng(0)
    inputs = tdmpc2_adapter.component_inputs(rng.normal(size=(64, 5)),
                                             rng.uniform(-1, 1, size=(64, 1)))
    stats = collect_channel_stats(grouper, inputs)
    pi = tdmpc2_adapter.components()["pi"].module
    first_hidden = pi[:3](inputs["pi"])  # what pi's second Linear reads
    group = next(g for g in grouper.groups if g.id == "pi/0")
    expected = first_hidden.abs().mean(0)
    torch.testing.assert_close(make_importance("activation", stats)(group.tp_group), expected)
    weighted = make_importance("activation_weight", stats)(group.tp_group)
    torch.testing.assert_close(weighted, expected * pi[3].weight.norm(dim=0))
    with pytest.raises(ValueError, match="needs channel statistics"):
        make_importance("taylor")
    with pytest.raises(ValueError, match="unknown importance"):
        make_importance("l3")


def test_cost_model_per_channel_costs(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter, ["encoder"])
    costs = CostModel(grouper)
    # encoder: Linear(5,256) LN(256) Mish Linear(256,64) LN(64) SimNorm
    assert costs.dense.params == 5 * 256 + 256 + 2 * 256 + 256 * 64 + 64 + 2 * 64
    one = costs.cost({"encoder/0": 1})
    assert costs.dense.params - one.params == 5 + 1 + 2 + 64
    assert costs.dense.flops - one.flops == 2 * (5 + 64)


def test_latent_interface_group_spans_every_reader_and_writer(tdmpc2_adapter):
    grouper = ComponentGrouper(tdmpc2_adapter, interfaces=["latent"])
    latent = grouper.groups[-1]
    assert (latent.id, latent.channels, latent.unit) == ("interface/latent", 64, 8)
    by_role = {}
    for ref in latent.layers:
        by_role.setdefault(ref.role, set()).add(ref.component)
    assert by_role["out"] == by_role["norm"] == {"encoder", "dynamics"}
    assert by_role["in"] == {"dynamics", "reward", "pi", *(f"Q{i}" for i in range(5))}
    # Consumers read the latent in the first 64 input columns, before the action.
    assert all(ref.idxs == tuple(range(64)) for ref in latent.layers)
    with pytest.raises(ValueError, match="no prunable interface 'action'"):
        ComponentGrouper(tdmpc2_adapter, interfaces=["action"])
    with pytest.raises(ValueError, match=r"changes components \['encoder', 'dynamics'"):
        ComponentGrouper(tdmpc2_adapter, ["pi"], interfaces=["latent"])


def test_pruned_latent_keeps_whole_simnorm_blocks_and_matches_masks(tdmpc2_adapter, tmp_path):
    grouper = ComponentGrouper(tdmpc2_adapter, interfaces=["latent"])
    coefficients = Coefficients.from_dict([g.id for g in grouper.groups],
                                          {"interface/latent": 0.3})
    plan = ranking_for(grouper, "random").plan(coefficients, 0.5, 0.02)
    removed = plan.removed["interface/latent"]
    assert removed and len(removed) % 8 == 0
    assert all(set(range(b, b + 8)) <= set(removed) or not set(range(b, b + 8)) & set(removed)
               for b in range(0, 64, 8))
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(16, 5)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(16, 1)).astype(np.float32)
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        inputs = tdmpc2_adapter.component_inputs(obs, actions)
        masked = {n: c.module(inputs[n]) for n, c in tdmpc2_adapter.components().items()}
        tdmpc2_adapter.reset(0)
        masked_actions = tdmpc2_adapter.act(obs[:2])
    pruned = prune_physically(tdmpc2_adapter, plan)
    kept = pruned.meta["interface_index"]["latent"]
    assert pruned.latent_width == len(kept) == 64 - len(removed)
    inputs = pruned.component_inputs(obs, actions)
    for name, component in pruned.components().items():
        expected = masked[name][:, kept] if name in ("encoder", "dynamics") else masked[name]
        torch.testing.assert_close(component.module(inputs[name]), expected,
                                   rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for c in pruned.components().values()
               for p in c.module.parameters()) == plan.cost.params
    pruned.reset(0)
    np.testing.assert_allclose(pruned.act(obs[:2]), masked_actions, atol=1e-5)
    pruned.save(tmp_path / "latent.pt")
    reloaded = TDMPC2Adapter.from_path(tmp_path / "latent.pt")
    assert reloaded.agent.model.cfg.latent_dim == len(kept)
    assert reloaded.meta["interface_index"]["latent"] == kept
    reloaded.reset(0)
    pruned.reset(0)
    np.testing.assert_array_equal(reloaded.act(obs[:2]), pruned.act(obs[:2]))
