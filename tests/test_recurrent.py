"""LSTM hidden units prune: the four gates' rows, the recurrent columns and the readers'
inputs go together; masked equals physical over a rollout run one step per call, as a
recurrent policy acts, and the cost model counts the pruned LSTM."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlprune import ComponentGrouper, prune_physically
from rlprune.adapters import ModuleAdapter
from rlprune.pruning.latency import LatencyModel, LayerTimes
from rlprune.pruning.masking import ChannelMasks
from rlprune.pruning.recurrent import LSTM_PRUNER
from rlprune.search import baseline_plan


class RecurrentActor(nn.Module):
    """observation -> Linear -> LSTM (state carried by the caller) -> MLP -> action."""

    def __init__(self, obs: int = 5, hidden: int = 12, lstm: int = 10) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(obs, hidden), nn.Tanh())
        self.lstm = nn.LSTM(hidden, lstm)
        self.head = nn.Sequential(nn.Linear(lstm, 8), nn.Tanh(), nn.Linear(8, 2))

    def step(self, x: torch.Tensor, state=None):
        out, state = self.lstm(self.encoder(x).unsqueeze(0), state)
        return self.head(out.squeeze(0)), state

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # one step from a zero state
        return self.step(x)[0]


def _rollout(actor: RecurrentActor, xs: torch.Tensor) -> torch.Tensor:
    state, outputs = None, []
    for x in xs:
        out, state = actor.step(x, state)
        outputs.append(out)
    return torch.stack(outputs)


@pytest.mark.parametrize("rho", [0.2, 0.5])
def test_masked_lstm_equals_the_pruned_one_over_a_rollout(rho):
    torch.manual_seed(0)
    actor = RecurrentActor().eval()
    adapter = ModuleAdapter(actor, torch.zeros(1, 5))
    grouper = ComponentGrouper(adapter)
    roles = {g.root: {r.name: r.role for r in g.layers} for g in grouper.groups}
    assert roles["lstm"] == {"lstm": "recurrent", "head.0": "in"}
    assert roles["encoder.0"] == {"encoder.0": "out", "lstm": "in"}
    plan = baseline_plan(grouper, "magnitude", rho, 0.05)
    assert plan.removed.get("model/lstm")
    xs = torch.randn(12, 3, 5)  # 12 steps, 3 episodes
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = _rollout(actor, xs)
    pruned = prune_physically(adapter, plan).modules["model"]
    assert pruned.lstm.hidden_size == 10 - len(plan.removed["model/lstm"])
    torch.testing.assert_close(_rollout(pruned, xs), masked, rtol=1e-5, atol=1e-6)
    assert sum(p.numel() for p in pruned.parameters()) == plan.cost.params
    model = LatencyModel(grouper, LayerTimes(threads=1))
    assert model.compute({"model/lstm": 4}) > 0  # the LSTM is timed at its pruned width
    assert any(key[:3] == ("lstm", 12, 6) for key in model.times._seconds)


def test_lstm_pruner_keeps_every_gate_of_the_kept_units():
    torch.manual_seed(1)
    lstm = nn.LSTM(4, 6)
    original = {n: p.detach().clone() for n, p in lstm.named_parameters()}
    LSTM_PRUNER.prune_out_channels(lstm, [1, 4])
    keep = torch.tensor([0, 2, 3, 5])
    rows = torch.cat([keep + gate * 6 for gate in range(4)])
    torch.testing.assert_close(lstm.weight_hh_l0, original["weight_hh_l0"][rows][:, keep])
    torch.testing.assert_close(lstm.weight_ih_l0, original["weight_ih_l0"][rows])
    torch.testing.assert_close(lstm.bias_hh_l0, original["bias_hh_l0"][rows])
    out, (h, c) = lstm(torch.randn(3, 2, 4))
    assert out.shape == (3, 2, 4) and h.shape == c.shape == (1, 2, 4)
    with pytest.raises(ValueError, match="one-layer"):
        LSTM_PRUNER.prune_out_channels(nn.LSTM(4, 6, num_layers=2), [0])
