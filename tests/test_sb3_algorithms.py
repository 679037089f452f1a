"""Every SB3 and sb3-contrib algorithm, trained here for a few hundred steps and saved by SB3:
load, prune the acting network (masked == physical), save, ``ALGO.load`` the pruned zip, act
as rlprune does, keep training, export to ONNX."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

import envs
from rlprune import ClosedLoopEvaluator, ComponentGrouper, load_agent, prune_physically
from rlprune.adapters.sb3_algorithms import ALGORITHMS
from rlprune.pruning.masking import ChannelMasks
from rlprune.search import baseline_plan

_OFF_POLICY = {"learning_starts": 50, "buffer_size": 2000}
# algorithm -> (env, policy, constructor kwargs, hidden widths of its acting network)
CASES = {
    "SAC": ("Pendulum-v1", "MlpPolicy", {**_OFF_POLICY, "policy_kwargs": {"net_arch": [32, 32]}}),
    "TD3": ("Pendulum-v1", "MlpPolicy", {**_OFF_POLICY, "policy_kwargs": {"net_arch": [32, 32]}}),
    "DDPG": ("Pendulum-v1", "MlpPolicy", {**_OFF_POLICY, "policy_kwargs": {"net_arch": [32]}}),
    "TQC": ("Pendulum-v1", "MlpPolicy", {**_OFF_POLICY, "policy_kwargs": {
        "net_arch": [32, 32], "n_critics": 2, "n_quantiles": 5}}),
    "CrossQ": ("Pendulum-v1", "MlpPolicy", {**_OFF_POLICY, "policy_kwargs": {
        "net_arch": {"pi": [32, 32], "qf": [48, 48]}}}),
    "PPO": ("CartPole-v1", "MlpPolicy", {"n_steps": 64, "batch_size": 32,
                                         "policy_kwargs": {"net_arch": [32, 32]}}),
    "A2C": ("Pendulum-v1", "MlpPolicy", {"n_steps": 16, "policy_kwargs": {"net_arch": [32]}}),
    "TRPO": ("Pendulum-v1", "MlpPolicy", {"n_steps": 64, "batch_size": 32,
                                          "policy_kwargs": {"net_arch": [32, 32]}}),
    "MaskablePPO": ("CartPole-v1", "MlpPolicy", {"n_steps": 64, "batch_size": 32,
                                                 "policy_kwargs": {"net_arch": [32, 32]}}),
    "RecurrentPPO": ("Pendulum-v1", "MlpLstmPolicy", {
        "n_steps": 64, "batch_size": 32,
        "policy_kwargs": {"net_arch": [32, 32], "lstm_hidden_size": 16}}),
    "DQN": ("CartPole-v1", "MlpPolicy", {**_OFF_POLICY, "policy_kwargs": {"net_arch": [32, 32]}}),
    "QRDQN": ("CartPole-v1", "MlpPolicy", {**_OFF_POLICY, "policy_kwargs": {
        "net_arch": [32, 32], "n_quantiles": 7}}),
    "ARS": ("Pendulum-v1", "MlpPolicy", {"n_delta": 2, "policy_kwargs": {"net_arch": [32]}}),
}


def test_every_algorithm_of_the_table_has_a_case():
    assert set(CASES) == set(ALGORITHMS)


def _training_env(name: str, env_id: str):
    """The env an algorithm trains in: MaskablePPO trains only where the env gives action
    masks, so it gets all actions valid."""
    env = envs.make_env(env_id)
    if name == "MaskablePPO":
        from sb3_contrib.common.wrappers import ActionMasker

        env = ActionMasker(env, lambda e: np.ones(e.action_space.n, dtype=bool))
    return env


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request, tmp_path_factory):
    name = request.param
    env_id, policy, kwargs = CASES[name]
    cls = ALGORITHMS[name].load_class()
    model = cls(policy, _training_env(name, env_id), seed=0, device="cpu", **kwargs)
    model.learn(200)
    path = tmp_path_factory.mktemp(name) / f"{name.lower()}.zip"
    model.save(path)
    return name, env_id, path


def _pruned_as_masked(agent, grouper, plan, acting: str, inputs: torch.Tensor):
    """The physically pruned agent, checked to compute what the masked one does."""
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = grouper.components[acting].module(inputs)
    pruned = prune_physically(agent, plan)
    torch.testing.assert_close(pruned.components()[acting].module(inputs), masked,
                               rtol=1e-5, atol=1e-5)
    return pruned


def _observations(agent, n: int = 16) -> np.ndarray:
    space = agent.observation_space
    return np.random.default_rng(0).uniform(-1, 1, size=(n, *space.shape)).astype(np.float32)


def test_loads_as_its_algorithm_and_prunes_its_acting_network(trained, tmp_path):
    name, env_id, path = trained
    agent = load_agent(path)
    assert agent.algorithm == name and agent.kind == f"sb3-{name.lower()}"
    acting = ALGORITHMS[name].family.acting
    grouper = ComponentGrouper(agent)
    assert set(grouper.components) == {acting} and grouper.groups
    plan = baseline_plan(grouper, "magnitude", 0.5, 0.05)
    obs = _observations(agent)
    fresh = np.ones(len(obs), dtype=bool)  # every call a first step: no recurrent state
    inputs = agent.component_inputs(obs, agent.act(obs, fresh))[acting]
    pruned = _pruned_as_masked(agent, grouper, plan, acting, inputs)
    pruned.meta["task"] = env_id
    pruned.save(tmp_path / "pruned.zip")
    # SB3 itself loads the pruned file and acts as rlprune's view of it does.
    model = ALGORITHMS[name].load_class().load(tmp_path / "pruned.zip", device="cpu")
    np.testing.assert_allclose(model.predict(pruned._observations(obs), deterministic=True)[0],
                               pruned.act(obs, fresh), rtol=1e-5, atol=1e-5)
    reloaded = load_agent(tmp_path / "pruned.zip")
    assert sum(p.numel() for p in reloaded.components()[acting].module.parameters()) == sum(
        p.numel() for p in pruned.components()[acting].module.parameters())
    np.testing.assert_allclose(reloaded.act(obs, fresh), pruned.act(obs, fresh), rtol=1e-6,
                               atol=1e-6)
    evaluator = ClosedLoopEvaluator.for_agent(reloaded, episodes=2, max_episode_steps=40)
    result = evaluator.evaluate(reloaded)
    assert result.error is None and np.all(np.isfinite(result.returns))


def test_every_network_pruned_reloads_with_the_same_outputs(trained, tmp_path):
    """Critics too (heads cut to different widths are saved zero-padded)."""
    _, _, path = trained
    agent = load_agent(path)
    every = list(agent.components())
    pruned = prune_physically(agent, baseline_plan(ComponentGrouper(agent, every),
                                                   "magnitude", 0.5, 0.05), every)
    obs = _observations(agent)
    inputs = pruned.component_inputs(obs, pruned.act(obs))
    before = {n: c.module(inputs[n]) for n, c in pruned.components().items()}
    pruned.save(tmp_path / "pruned.zip")
    reloaded = load_agent(tmp_path / "pruned.zip")
    for name, component in reloaded.components().items():
        torch.testing.assert_close(component.module(inputs[name]), before[name],
                                   rtol=1e-5, atol=1e-5)


def test_pruned_agent_trains_on_in_sb3(trained, tmp_path):
    name, env_id, path = trained
    agent = load_agent(path)
    pruned = prune_physically(agent, baseline_plan(ComponentGrouper(agent), "magnitude",
                                                   0.5, 0.05))
    pruned.save(tmp_path / "pruned.zip")
    model = ALGORITHMS[name].load_class().load(tmp_path / "pruned.zip",
                                               env=_training_env(name, env_id), device="cpu")
    if hasattr(model, "learning_starts"):
        model.learning_starts = 0
    model.learn(64)  # optimisers and targets fit the pruned shapes
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())


def test_recurrent_policy_prunes_its_lstm_and_saves_a_critic_of_the_same_width(tmp_path):
    from sb3_contrib import RecurrentPPO

    model = RecurrentPPO("MlpLstmPolicy", envs.make_env("Pendulum-v1"), seed=0, device="cpu",
                         n_steps=32, batch_size=16,
                         policy_kwargs={"net_arch": [16], "lstm_hidden_size": 12})
    model.save(tmp_path / "agent.zip")
    agent = load_agent(tmp_path / "agent.zip")
    grouper = ComponentGrouper(agent)
    lstm = next(g for g in grouper.groups if g.root == "memory.lstm")
    plan = baseline_plan(grouper, "magnitude", 0.6, 0.05)
    assert plan.removed.get(lstm.id)  # the LSTM's own hidden units go too
    pruned = prune_physically(agent, plan)
    width = pruned.model.policy.lstm_actor.hidden_size
    assert width < 12 and pruned.model.policy.lstm_hidden_state_shape == (1, 1, width)
    # acting over an episode (state carried) equals acting with the masks on the dense one
    evaluator = ClosedLoopEvaluator("Pendulum-v1", episodes=3, max_episode_steps=30)
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = evaluator.evaluate(agent).returns
    np.testing.assert_allclose(evaluator.evaluate(pruned).returns, masked, rtol=1e-5)
    pruned.save(tmp_path / "pruned.zip")  # the dense critic LSTM is cut to the actor's width
    reloaded = RecurrentPPO.load(tmp_path / "pruned.zip", device="cpu")
    assert reloaded.policy.lstm_critic.hidden_size == width
    np.testing.assert_allclose(evaluator.evaluate(load_agent(tmp_path / "pruned.zip")).returns,
                               masked, rtol=1e-5)


def test_onnx_policy_matches_predict(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from rlprune.export import export_onnx
    from tests.test_export import run_onnx

    name, _, path = trained
    agent = load_agent(path)
    graphs = export_onnx(agent, tmp_path)
    if name == "RecurrentPPO":  # state in, state out: an episode step by step
        import onnxruntime

        session = onnxruntime.InferenceSession(graphs[0].path)
        episode = np.random.default_rng(0).uniform(-1, 1, size=(6, 4, 3)).astype(np.float32)
        h = c = np.zeros((1, 4, agent.model.policy.lstm_actor.hidden_size), np.float32)
        state = None
        for t, obs in enumerate(episode):
            got, h, c = session.run(None, {"input": obs, "input_1": h, "input_2": c})
            expected, state = agent.model.predict(obs, state, episode_start=np.full(4, t == 0),
                                                  deterministic=True)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        return
    obs = _observations(agent, 32)
    expected, _ = agent.model.predict(obs, deterministic=True)
    got = run_onnx(graphs[0].path, obs)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-5)


class _Pixels(gymnasium.Env):
    """36x36 RGB frames (the smallest NatureCNN takes) and a Discrete or Box action."""

    observation_space = gymnasium.spaces.Box(0, 255, (36, 36, 3), np.uint8)

    def __init__(self, discrete: bool = True) -> None:
        self.action_space = gymnasium.spaces.Discrete(3) if discrete else \
            gymnasium.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


# algorithm -> (discrete actions, constructor kwargs, convolutions pruned, sparsity)
_PIXEL_CASES = {
    "PPO": (True, {"n_steps": 32, "batch_size": 16}, True, 0.5),
    "DQN": (True, {"learning_starts": 0, "buffer_size": 100}, True, 0.5),
    "QRDQN": (True, {"learning_starts": 0, "buffer_size": 100}, True, 0.5),
    "SAC": (False, {"learning_starts": 0, "buffer_size": 100}, False, 0.02),  # MLP only
}


@pytest.mark.parametrize("name", sorted(_PIXEL_CASES))
def test_cnn_policies_prune_and_sb3_reloads_them(name, tmp_path):
    """NatureCNN's filters prune where one description rebuilds every extractor of the
    policy (the pruned zip names rlprune's ResizedExtractor); elsewhere it is kept whole
    and the MLP after it prunes."""
    discrete, kwargs, convolutions, rho = _PIXEL_CASES[name]
    cls = ALGORITHMS[name].load_class()
    model = cls("CnnPolicy", _Pixels(discrete), seed=0, device="cpu",
                policy_kwargs={"net_arch": [32], "features_extractor_kwargs":
                               {"features_dim": 64}}, **kwargs)
    model.save(tmp_path / "agent.zip")
    agent = load_agent(tmp_path / "agent.zip")
    frames = np.stack([agent.observation_space.sample() for _ in range(6)])
    np.testing.assert_array_equal(agent.act(frames),
                                  agent.model.predict(frames, deterministic=True)[0])
    grouper = ComponentGrouper(agent)
    pruned_convs = [g.id for g in grouper.groups if ".cnn." in g.id]
    assert bool(pruned_convs) == convolutions
    plan = baseline_plan(grouper, "magnitude", rho, 0.01)
    acting = ALGORITHMS[name].family.acting
    inputs = agent.component_inputs(frames, agent.act(frames))[acting]
    pruned = _pruned_as_masked(agent, grouper, plan, acting, inputs)
    pruned.save(tmp_path / "pruned.zip")
    reloaded = cls.load(tmp_path / "pruned.zip", device="cpu")
    assert sum(p.numel() for p in reloaded.policy.parameters()) == sum(
        p.numel() for p in pruned.model.policy.parameters())
    np.testing.assert_allclose(reloaded.predict(frames, deterministic=True)[0],
                               pruned.act(frames), rtol=1e-5, atol=1e-5)
    reloaded.set_env(_Pixels(discrete))
    reloaded.learn(40)  # optimisers, targets and the value branch fit the pruned shapes


class _Reach(gymnasium.Env):
    """Dict observations (position, goal); reward: minus the distance after a move."""

    observation_space = gymnasium.spaces.Dict({
        "position": gymnasium.spaces.Box(-2, 2, (2,), np.float32),
        "goal": gymnasium.spaces.Box(-1, 1, (3,), np.float32)})
    action_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)

    def __init__(self, render_mode=None) -> None:
        self.render_mode = render_mode

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.state = {k: self.np_random.uniform(-1, 1, s.shape).astype(np.float32)
                      for k, s in self.observation_space.spaces.items()}
        self.steps = 0
        return {k: v.copy() for k, v in self.state.items()}, {}

    def step(self, action):
        self.state["position"] = np.clip(self.state["position"] + 0.1 * action, -2, 2)
        self.steps += 1
        reward = -float(np.linalg.norm(self.state["position"] - self.state["goal"][:2]))
        return ({k: v.copy() for k, v in self.state.items()}, reward, False,
                self.steps >= 20, {})


gymnasium.register("rlprune-test/Reach-v0", entry_point=_Reach)


def test_dict_observation_policies_act_prune_and_reload(tmp_path):
    """MultiInputPolicy: one extractor per key; the env's dicts arrive flattened in the
    space's key order and the policy gets its dict back."""
    from stable_baselines3 import SAC

    model = SAC("MultiInputPolicy", _Reach(), seed=0, device="cpu", learning_starts=20,
                buffer_size=200, policy_kwargs={"net_arch": [32, 32]})
    model.learn(60)
    model.save(tmp_path / "sac-reach.zip")
    agent = load_agent(tmp_path / "sac-reach.zip")
    assert agent.observation_space.shape == (5,)
    assert agent.describe()["env_wrappers"] == [["flatten_dict", {}]]
    evaluator = ClosedLoopEvaluator("rlprune-test/Reach-v0", episodes=3,
                                    wrappers=agent.describe()["env_wrappers"])
    env = _Reach()
    expected = []
    for seed in evaluator.seeds:  # SB3 acting on the dicts themselves
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = model.predict({k: v[None] for k, v in obs.items()},
                                   deterministic=True)[0][0]
            obs, reward, _, done, _ = env.step(action)
            total += reward
        expected.append(total)
    np.testing.assert_allclose(evaluator.evaluate(agent).returns, expected, rtol=1e-5)
    grouper = ComponentGrouper(agent)
    plan = baseline_plan(grouper, "magnitude", 0.5, 0.05)
    with ChannelMasks(grouper) as masks:
        masks.set_plan(plan)
        masked = evaluator.evaluate(agent).returns
    pruned = prune_physically(agent, plan)
    pruned.save(tmp_path / "pruned.zip")
    reloaded = load_agent(tmp_path / "pruned.zip")
    np.testing.assert_allclose(evaluator.evaluate(reloaded).returns, masked, rtol=1e-5)
    assert SAC.load(tmp_path / "pruned.zip", device="cpu").policy.actor.latent_pi[0] \
        .out_features < 32
