"""Extension points: a criterion, a search method, an objective or an agent kind is one
registration, and the CLI runs it with no other edit."""

from __future__ import annotations

import json

import pytest
import torch
import torch_pruning as tp
from torch import nn
from typer.testing import CliRunner

from rlprune.adapters import (
    AGENT_KINDS,
    AgentAdapter,
    ModuleAdapter,
    load_agent,
    register_agent_kind,
)
from rlprune.adapters.registry import AgentKind
from rlprune.cli import app
from rlprune.pruning.importance import CRITERIA, Criterion, register_criterion
from rlprune.search import METHODS, OBJECTIVES, Objective, Score, SearchMethod, register_method

AE = "digits-autoencoder"


@pytest.fixture
def registered():
    """Registers toys for one test and removes them afterwards."""
    added: list[tuple[dict, str]] = []

    def add(registry: dict, register, item):
        register(item)
        added.append((registry, item.name))
        return item

    yield add
    for registry, name in added:
        registry.pop(name)


class LastChannelsFirst(tp.importance.Importance):
    """Scores channels by position: the highest index is pruned first."""

    calls = 0

    def __call__(self, group) -> torch.Tensor:
        LastChannelsFirst.calls += 1
        return torch.arange(len(group[0].idxs), 0, -1, dtype=torch.float32)


def test_a_registered_criterion_runs_through_the_cli(registered, tmp_path):
    registered(CRITERIA, register_criterion,
               Criterion("position", lambda stats, seed: LastChannelsFirst(), False, "toy"))
    LastChannelsFirst.calls = 0
    run = CliRunner().invoke(app, ["prune", AE, "--out", str(tmp_path), "--sparsity", "0.3",
                                   "--method", "grid", "--budget", "2",
                                   "--criterion", "position", "--json"])
    assert run.exit_code == 0, run.output
    assert LastChannelsFirst.calls > 0
    removed = json.loads((tmp_path / "report.json").read_text())["result"]["plan"]["removed"]
    groups = json.loads(CliRunner().invoke(app, ["inspect", AE, "--json"]).output)["groups"]
    width = {g["group"]: g["channels"] for g in groups}
    assert removed
    for group, channels in removed.items():  # position scores: the highest indices go
        assert channels == list(range(width[group] - len(channels), width[group]))


def test_a_registered_search_method_runs_through_the_cli(registered, tmp_path):
    tried: list[int] = []

    def halves(harness, visited, seed):
        """Tries all-ones, then every coefficient halved in turn."""
        n = len(harness.units)
        tried.append(n)
        harness.evaluate_many([torch.ones(n).numpy()] + [
            torch.ones(n).index_fill(0, torch.tensor([i]), 0.5).numpy() for i in range(n)])

    registered(METHODS, register_method, SearchMethod("halves", halves, description="toy"))
    run = CliRunner().invoke(app, ["prune", AE, "--out", str(tmp_path), "--sparsity", "0.3",
                                   "--method", "halves", "--budget", "10", "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads((tmp_path / "report.json").read_text())["result"]
    assert tried and report["evaluations"] == min(10, tried[0] + 1)


def test_a_registered_agent_kind_loads_through_the_cli(registered, tmp_path):
    def load(path, options):
        data = torch.load(path, weights_only=True)
        net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
        net.load_state_dict(data["weights"])
        return ModuleAdapter(net, torch.zeros(1, 4))

    registered(AGENT_KINDS, register_agent_kind, AgentKind(
        "toy-mlp", "a toy MLP file", lambda probe: isinstance(probe.torch_data, dict)
        and probe.torch_data.get("format") == "toy-mlp", load))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    torch.save({"format": "toy-mlp", "weights": net.state_dict()}, tmp_path / "a.pt")
    run = CliRunner().invoke(app, ["inspect", str(tmp_path / "a.pt"), "--json"])
    assert run.exit_code == 0, run.output
    info = json.loads(run.output)
    assert info["agent"]["kind"] == "module" and info["groups"][0]["channels"] == 32
    refused = CliRunner().invoke(app, ["inspect", str(tmp_path / "a.pt"), "--task", "x"])
    assert refused.exit_code == 2 and "toy-mlp agent, which takes no --task" in refused.output


class NegativeMSE(Objective):
    """A toy objective: minus the mean squared reconstruction error."""

    def __init__(self, images):
        self.images = images

    def __call__(self, agent, incumbent=None):
        with torch.no_grad():
            return Score(-float(((agent.model(self.images) - self.images) ** 2).mean()))

    def describe(self):
        return {"metric": "neg-mse", "images": len(self.images)}

    def scored_states(self, agent):
        return self(agent), self.images.numpy(), None


def test_a_registered_objective_scores_candidates_through_the_cli(monkeypatch, tmp_path):
    monkeypatch.setitem(OBJECTIVES, "neg-mse", lambda agent, evaluation: NegativeMSE(
        agent.evaluation_images(evaluation.split)))
    assert "return, psnr" in CliRunner().invoke(app, ["prune", "--help"],
                                                env={"COLUMNS": "200"}).output
    run = CliRunner().invoke(app, ["prune", AE, "--out", str(tmp_path), "--sparsity", "0.3",
                                   "--method", "cmaes", "--budget", "3", "--seed", "2",
                                   "--objective", "neg-mse", "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads((tmp_path / "report.json").read_text())
    pruned = load_agent(tmp_path / "pruned.pt")
    images = pruned.evaluation_images("search")
    assert report["result"]["metric"] == pytest.approx(NegativeMSE(images)(pruned).value,
                                                       rel=1e-5)
    settings = report["settings"]  # what made the folder is stored in it
    assert settings["target"] == {"sparsity": 0.3, "tol": 0.01, "measure": "params"}
    assert settings["search"]["method"] == "cmaes" and settings["search"]["budget"] == 3
    assert settings["evaluation"]["seed"] == 2
    unknown = CliRunner().invoke(app, ["prune", AE, "--out", str(tmp_path / "x"),
                                       "--sparsity", "0.3", "--objective", "nope"])
    assert unknown.exit_code == 2 and "unknown objective 'nope'" in unknown.output


def test_method_and_criterion_registries_refuse_half_definitions():
    with pytest.raises(ValueError, match="either run= .* or criterion="):
        register_method(SearchMethod("nothing"))
    assert "nothing" not in METHODS


@pytest.mark.parametrize("name", ["cartpole-swingup", "sac-halfcheetah", AE])
def test_shipped_agents_declare_the_whole_adapter_contract(name):
    agent = load_agent(name)
    assert isinstance(agent, AgentAdapter)  # every member of the protocol is present
    assert agent.file_suffix in (".pt", ".zip") and agent.metric.name in OBJECTIVES
    assert set(agent.step_calls()) <= set(agent.components())
    assert set(agent.default_components or ()) <= set(agent.components())
