"""Official TD-MPC2 checkpoints: exact outputs, task folding, pruning, saving, bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import envs
import rlprune
from rlprune.cli import app
from rlprune.pruning.grouping import ComponentGrouper
from rlprune.pruning.importance import make_importance
from rlprune.pruning.ranking import ChannelRanking, Coefficients
from tdmpc2 import PlannerConfig, load_agent
from tdmpc2.official import load_official_agent, read_official
from tdmpc2.official_tasks import MT30

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "tdmpc2-official"
SHARED = ROOT.parent / "shared" / "fixtures" / "tdmpc2-official"
CHEAP = "iterations=2,samples=64,pi_trajs=8"
CASES = {"tiny-cartpole-swingup": "tiny-cartpole-swingup",
         "tiny-cartpole-swingup-2023-layout": "tiny-cartpole-swingup",
         "tiny-multitask-3": "tiny-multitask-3",
         "tiny-multitask-3-2023-layout": "tiny-multitask-3"}
SHARED_CASES = {"1M-cartpole-swingup": "1M-cartpole-swingup",
                "1M-cartpole-swingup-2023-layout": "1M-cartpole-swingup",
                "1M-multitask-4": "1M-multitask-4",
                "1M-multitask-4-2023-layout": "1M-multitask-4",
                "5M-walker-run-2023-layout": "5M-walker-run"}


@torch.no_grad()
def component_outputs(model, obs: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every component's output, named as in the official reference files."""
    z = model.encode(obs)
    return {"latent": z, "next_latent": model.next(z, action),
            "reward": model.two_hot.decode(model.reward_logits(z, action)),
            "q_logits_all": model.q_logits(z, action),
            "pi_mean_tanh": torch.tanh(model.pi(z).chunk(2, dim=-1)[0])}


def max_errors(path: Path, reference: Path) -> dict[str, float]:
    """Largest |ours - official| per output; a multi-task model is built once per task and
    compared on that task's rows."""
    ref = torch.load(reference, weights_only=True)
    ckpt = read_official(path)
    tasks = ref.get("task")
    errors: dict[str, float] = {}
    for task in [None] if tasks is None else sorted(set(tasks.tolist())):
        rows = torch.ones(len(ref["obs"]), dtype=torch.bool) if task is None else tasks == task
        ours = component_outputs(ckpt.agent(task).model, ref["obs"][rows], ref["action"][rows])
        for name, value in ours.items():
            official = ref[name][:, rows] if name == "q_logits_all" else ref[name][rows]
            assert value.shape == official.shape, name
            errors[name] = max(errors.get(name, 0.0), (value - official).abs().max().item())
    return errors


@pytest.mark.parametrize("name", list(CASES))
def test_every_component_reproduces_the_official_outputs(name):
    errors = max_errors(DATA / f"{name}.pt", DATA / f"{CASES[name]}-reference.pt")
    assert set(errors) == {"latent", "next_latent", "reward", "q_logits_all", "pi_mean_tanh"}
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.parametrize("name", list(SHARED_CASES))
def test_official_model_sizes_reproduce_their_outputs(name):
    path = SHARED / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"shared fixture {path} absent (only the tiny ones ship in tests/data)")
    errors = max_errors(path, SHARED / f"{SHARED_CASES[name]}-reference.pt")
    assert max(errors.values()) < 1e-5, errors


def test_both_layouts_give_the_same_agent():
    for stem, task in (("tiny-cartpole-swingup", None), ("tiny-multitask-3", 1)):
        current = read_official(DATA / f"{stem}.pt")
        old = read_official(DATA / f"{stem}-2023-layout.pt")
        assert (current.layout, old.layout) == ("current", "2023")
        for dims in ((None, None), (17, 5)) if task is not None else ((None, None),):
            a = current.agent(task, *dims).model.state_dict()
            b = old.agent(task, *dims).model.state_dict()
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a)


def test_architecture_task_and_official_setup_are_read_from_the_file():
    agent = load_official_agent(DATA / "tiny-cartpole-swingup.pt")
    cfg = agent.model.cfg
    assert (cfg.obs_dim, cfg.action_dim, cfg.latent_dim, cfg.enc_dim, cfg.mlp_dim,
            cfg.num_q, cfg.num_bins, cfg.termination) == (5, 1, 16, 32, 48, 5, 101, False)
    assert agent.planner_cfg == PlannerConfig()  # the official planner defaults
    assert agent.discount == pytest.approx(0.99)  # DMC: 500 agent steps
    meta = agent.meta
    assert meta["source"] == "tdmpc2-official" and meta["layout"] == "current"
    assert meta["task"] == "dmc/cartpole-swingup" and meta["action_repeat"] == 2
    assert meta["official_task"] == "cartpole-swingup" and meta["model_size"] == "custom"
    assert meta["official_config"]["iterations"] == 6
    assert meta["official_config"]["episode_length"] == 500
    json.dumps(meta)  # saved with the agent: JSON-able
    if (SHARED / "5M-walker-run-2023-layout.pt").is_file():
        big = load_official_agent(SHARED / "5M-walker-run-2023-layout.pt")
        assert big.meta["model_size"] == 5 and big.meta["task"] == "dmc/walker-run"


def test_task_names_come_from_the_card_or_the_official_task_sets(tmp_path):
    ckpt = read_official(DATA / "tiny-multitask-3.pt")
    assert ckpt.tasks == ("walker-walk", "cheetah-run", "cartpole-swingup")
    assert ckpt.task_index("cheetah-run") == 1 and ckpt.task_index("2") == 2
    with pytest.raises(ValueError, match="unknown task 'walker-run'.*known: walker-walk"):
        ckpt.task_index("walker-run")
    with pytest.raises(ValueError, match="multi-task model over 3 tasks"):
        ckpt.task_index(None)
    for bad in (-1, 3, "3"):
        with pytest.raises(ValueError, match="unknown task"):
            ckpt.task_index(bad)
    state = torch.load(DATA / "tiny-multitask-3.pt", weights_only=True)["model"]
    state["_task_emb.weight"] = torch.randn(30, 96) * 0.1
    state["_action_masks"] = torch.ones(30, 6)
    torch.save({"model": state}, tmp_path / "mt30.pt")
    mt30 = read_official(tmp_path / "mt30.pt")
    assert mt30.tasks == MT30 and mt30.task_index("cartpole-swingup") == 10
    state["_task_emb.weight"] = torch.randn(7, 96)
    torch.save({"model": state}, tmp_path / "seven.pt")
    with pytest.raises(ValueError, match=r"names are unknown \(no seven.json.*index 0..6"):
        read_official(tmp_path / "seven.pt").task_index("walker-walk")
    (tmp_path / "seven.json").write_text(json.dumps({"tasks": ["walker-walk"]}))
    with pytest.raises(ValueError, match='seven.json: "tasks" must list 7 task names'):
        read_official(tmp_path / "seven.pt")


def test_dropping_padding_and_masked_actions_changes_no_output():
    ckpt = read_official(DATA / "tiny-multitask-3.pt")  # task 1 acts in 5 of 6 dims
    full, fitted = ckpt.agent(1).model, ckpt.agent(1, obs_dim=17, action_dim=5).model
    assert (fitted.cfg.obs_dim, fitted.cfg.action_dim) == (17, 5)
    g = torch.Generator().manual_seed(0)
    obs, action = torch.randn(9, 17, generator=g), torch.rand(9, 5, generator=g) * 2 - 1
    padded_obs, padded_action = F.pad(obs, (0, 7)), F.pad(action, (0, 1))
    ours = component_outputs(fitted, obs, action)
    theirs = component_outputs(full, padded_obs, padded_action)
    for name in ("latent", "next_latent", "reward", "q_logits_all"):
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6)
    torch.testing.assert_close(ours["pi_mean_tanh"], theirs["pi_mean_tanh"][:, :5], rtol=0,
                               atol=1e-6)
    with torch.no_grad():
        log_std = fitted.pi(fitted.encode(obs)).chunk(2, -1)[1]
        full_log_std = full.pi(full.encode(padded_obs)).chunk(2, -1)[1]
    torch.testing.assert_close(log_std, full_log_std[:, :5], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="acts in 5 of its 6 action dims, the env has 6"):
        ckpt.agent(1, action_dim=6)
    with pytest.raises(ValueError, match="zero-padded to 24"):
        ckpt.agent(1, obs_dim=30)


def test_the_task_embedding_is_renormalised_like_the_official_embedding(tmp_path):
    state = torch.load(DATA / "tiny-multitask-3.pt", weights_only=True)["model"]
    state["_task_emb.weight"] = state["_task_emb.weight"] * 20  # norms ~4: max_norm=1 acts
    torch.save({"model": state}, tmp_path / "big-embedding.pt")
    ours = read_official(tmp_path / "big-embedding.pt").agent(0).model
    obs = torch.randn(4, 24)
    emb = state["_task_emb.weight"][0]
    x = torch.cat([obs, (emb / emb.norm()).expand(4, -1)], -1)  # nn.Embedding(max_norm=1)
    for i in range(2):  # the official encoder, written out: NormedLinear layers, SimNorm
        p = f"_encoder.state.{i}."
        x = F.linear(x, state[p + "weight"], state[p + "bias"])
        x = F.layer_norm(x, x.shape[-1:], state[p + "ln.weight"], state[p + "ln.bias"])
        x = F.mish(x) if i == 0 else F.softmax(x.view(4, -1, 8), -1).view(4, -1)
    torch.testing.assert_close(ours.encode(obs), x, rtol=0, atol=1e-5)


def _with_termination(tmp_path: Path, bias: float) -> Path:
    """The tiny single-task checkpoint plus an official termination head (z -> 1 logit)
    whose output is ``bias`` everywhere."""
    state = torch.load(DATA / "tiny-cartpole-swingup.pt", weights_only=True)["model"]
    for i, (rows, cols) in enumerate(((48, 16), (48, 48), (1, 48))):
        p = f"_termination.{i}."
        state[p + "weight"] = torch.randn(rows, cols) * 0.1 * (i < 2)
        state[p + "bias"] = torch.full((rows,), bias)
        if i < 2:
            state[p + "ln.weight"], state[p + "ln.bias"] = torch.ones(rows), torch.zeros(rows)
    path = tmp_path / f"episodic-{bias}.pt"
    torch.save({"model": state}, path)
    return path


def test_a_termination_head_ends_the_planners_value_after_a_predicted_end(tmp_path):
    plain = load_official_agent(DATA / "tiny-cartpole-swingup.pt")
    ends = load_official_agent(_with_termination(tmp_path, 3.0))
    lives = load_official_agent(_with_termination(tmp_path, -3.0))
    assert "termination" in ends.model.components() and ends.meta["official_config"][
        "termination"]
    z = plain.model.encode(torch.randn(6, 5))
    actions = torch.rand(3, 6, 1) * 2 - 1
    values = {}
    for name, agent in (("plain", plain), ("ends", ends), ("lives", lives)):
        agent.planner.reseed(0)
        with torch.no_grad():
            values[name] = agent.planner.estimate_value(z, actions, 1)
    torch.testing.assert_close(values["lives"], values["plain"], rtol=0, atol=0)
    with torch.no_grad():  # the episode ends after the first step: its reward is all
        first = plain.model.two_hot.decode(plain.model.reward_logits(z, actions[0]))
    torch.testing.assert_close(values["ends"], first, rtol=0, atol=0)
    adapter = rlprune.load_agent(_with_termination(tmp_path, 3.0), task="cartpole-swingup")
    grouper = ComponentGrouper(adapter)
    assert {g.component for g in grouper.groups} >= {"termination", "pi", "Q0"}
    latent = next(i for i in adapter.interfaces if i.name == "latent")
    assert "termination" in latent.consumers
    adapter.save(tmp_path / "saved.pt")
    assert load_agent(tmp_path / "saved.pt").model.cfg.termination


def _half_pruned(adapter):
    grouper = ComponentGrouper(adapter)
    importance = make_importance("l2")
    ranking = ChannelRanking(grouper, {g.id: importance(g.tp_group) for g in grouper.groups})
    plan = ranking.plan(Coefficients([g.id for g in grouper.groups]), 0.5, 0.02)
    assert abs(plan.sparsity - 0.5) <= 0.02
    return rlprune.prune_physically(adapter, plan)


def _act(adapter, steps: int = 4) -> np.ndarray:
    env = envs.make_env(adapter.describe()["task"], action_repeat=adapter.action_repeat)
    obs, _ = env.reset(seed=0)
    adapter.reset(0)
    actions = []
    for t in range(steps):
        action = adapter.act(obs[None], np.array([t == 0]))[0]
        actions.append(action)
        obs, *_ = env.step(action)
    return np.array(actions)


def test_pruned_official_agent_acts_in_dmc_and_saves_in_our_format(tmp_path):
    dense = rlprune.load_agent(DATA / "tiny-cartpole-swingup-2023-layout.pt", planner=CHEAP)
    assert dense.agent.planner_cfg.iterations == 2 and dense.agent.planner_cfg.num_samples == 64
    pruned = _half_pruned(dense)
    actions = _act(pruned)
    assert actions.shape == (4, 1) and np.isfinite(actions).all()
    pruned.save(tmp_path / "pruned.pt")
    reloaded = rlprune.load_agent(tmp_path / "pruned.pt")
    assert reloaded.kind == "tdmpc2" and reloaded.meta["source"] == "tdmpc2-official"
    assert reloaded.agent.planner_cfg == pruned.agent.planner_cfg
    np.testing.assert_array_equal(_act(reloaded), actions)


def test_a_named_multitask_task_runs_in_its_env():
    adapter = rlprune.load_agent(DATA / "tiny-multitask-3.pt", task="walker-walk",
                                 planner=CHEAP)
    assert adapter.describe()["task"] == "dmc/walker-walk" and adapter.action_repeat == 2
    assert adapter.meta["task_index"] == 0 and adapter.meta["official_task"] == "walker-walk"
    assert np.isfinite(_act(adapter, 2)).all()
    with pytest.raises(ValueError, match="acts in 5 of its 6 action dims, the env has 6"):
        rlprune.load_agent(DATA / "tiny-multitask-3.pt", task="cheetah-run")


def test_the_planner_option_reaches_our_own_agents_and_is_refused_elsewhere():
    agent = rlprune.load_agent("cartpole-swingup", planner="iterations=1,samples=32")
    assert (agent.agent.planner_cfg.iterations, agent.agent.planner_cfg.num_elites) == (1, 4)
    with pytest.raises(ValueError, match="takes no --planner"):
        rlprune.load_agent(ROOT / "tests" / "data" / "sac-pendulum-sb3-2.0.0.zip",
                           planner="iterations=2")
    with pytest.raises(ValueError, match="needs a whole number"):
        rlprune.load_agent("cartpole-swingup", planner="iterations=two")


def _edited(tmp_path: Path, edit) -> Path:
    state = torch.load(DATA / "tiny-cartpole-swingup.pt", weights_only=True)["model"]
    edit(state)
    path = tmp_path / "edited.pt"
    torch.save({"model": state}, path)
    return path


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.pop("_pi.1.weight"), r"missing keys: pi layer 1 weight"),
    (lambda s: s.pop("_pi.1.ln.bias"), r"pi layer 1: missing keys \['ln.bias'\]"),
    (lambda s: [s.pop(k) for k in list(s) if k.startswith(("_reward.", "_dynamics."))],
     r"missing keys _dynamics\.\*, _reward\.\*"),
    (lambda s: [s.pop(k) for k in list(s) if k.startswith("_Qs.")], "the Q ensemble"),
    (lambda s: s.update({"_dynamics.0.weight": torch.zeros(48, 20)}),
     "dynamics reads 20 inputs, expected 17"),
    (lambda s: s.update({"_pi.1.weight": torch.zeros(40, 48)}),
     r"pi layer 1 weight has shape \(40, 48\), expected \(48, 48\)"),
    (lambda s: s.update({"_encoder.rgb.0.weight": torch.zeros(3)}), "unexpected keys"),
])
def test_damaged_official_files_give_one_clear_error(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        read_official(_edited(tmp_path, edit)).agent()


def test_unreadable_or_foreign_files_and_wrong_tasks_are_refused(tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((DATA / "tiny-cartpole-swingup.pt").read_bytes()[:50_000])
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        read_official(truncated)
    torch.save({"model": {"weights": torch.zeros(2)}}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not an official TD-MPC2 checkpoint"):
        read_official(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        read_official(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="trained with observation size 5, the env has 24"):
        load_official_agent(DATA / "tiny-cartpole-swingup.pt", "walker-walk")
    with pytest.raises(ValueError, match="names no env rlprune runs"):
        load_official_agent(DATA / "tiny-cartpole-swingup.pt", "walker-walk-backwards")


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_reads_official_checkpoints_with_a_cheaper_planner():
    result = _cli("inspect", DATA / "tiny-multitask-3.pt", "--task", "walker-walk",
                  "--planner", CHEAP, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["agent"]["task"] == "dmc/walker-walk" and len(payload["groups"]) == 17


@pytest.mark.parametrize("agent,options,match", [
    ("tiny-multitask-3.pt", ["--task", "nope"], "unknown task 'nope'.*known: walker-walk"),
    ("TRUNCATED", [], "not a readable torch checkpoint"),
    ("tiny-cartpole-swingup.pt", ["--planner", "garbage"], "key=value pairs"),
])
def test_cli_bad_official_input_exits_2_with_one_line_and_writes_nothing(
        tmp_path, agent, options, match):
    if agent == "TRUNCATED":
        agent = tmp_path / "truncated.pt"
        agent.write_bytes((DATA / "tiny-cartpole-swingup.pt").read_bytes()[:50_000])
    else:
        agent = tmp_path / agent
        shutil.copy(DATA / agent.name, agent)
        if (DATA / agent.with_suffix(".json").name).is_file():
            shutil.copy(DATA / agent.with_suffix(".json").name, agent.with_suffix(".json"))
    before = sorted(tmp_path.iterdir())
    out = tmp_path / "run"
    result = _cli("prune", agent, "--out", out, "--sparsity", "0.5", *options)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlprune: error:"), result.stderr
    assert re.search(match, lines[0]), lines[0]
    assert sorted(tmp_path.iterdir()) == before and not out.exists()
