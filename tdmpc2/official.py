"""Official TD-MPC2 checkpoints (nicklashansen/tdmpc2) as our ``TDMPC2Agent``.

An official file is ``{"model": state_dict}`` of its ``WorldModel``; the Q ensemble is
stacked over heads, as ``_Qs.params.{layer}.{weight,bias,ln.weight,ln.bias}`` today
(``"current"`` layout, with TensorDict bookkeeping, detached/target copies and buffers)
or as ``_Qs.params.N``, N = 4 * layer + [weight, bias, ln.weight, ln.bias], in the
published 2023 files (``"2023"`` layout). The file holds no config: the architecture is
read from the weight shapes, task names and discount from ``official_tasks``.

Both share our architecture (Linear -> LayerNorm -> Mish blocks, SimNorm latent), so the
weights map one to one. A multi-task model concatenates a learned task embedding to
every component's input; for one chosen task that embedding is a constant, folded into
the first layer's bias (``W_x x + W_e e + b = W_x x + (W_e e + b)``), which leaves a plain
single-task agent whose inputs are what the env gives. Given the env's dimensions, the
zero-padding observation columns and the masked action columns go too: the official
code feeds zeros there, so dropping them changes no output.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import envs
from tdmpc2.agent import TDMPC2Agent, heuristic_discount
from tdmpc2.checkpoint import load_weights
from tdmpc2.config import ModelConfig, PlannerConfig, TrainConfig
from tdmpc2.official_tasks import TaskSetup, dmc_task_in, model_size, task_names, task_setup

__all__ = ["SOURCE", "OfficialCheckpoint", "load_official_agent", "read_official"]

SOURCE = "tdmpc2-official"
"""``meta["source"]`` of agents read from official checkpoints."""

_NETWORKS = {"encoder": "_encoder.state", "dynamics": "_dynamics", "reward": "_reward",
             "pi": "_pi", "termination": "_termination"}
"""Our component name -> the official module prefix (Q heads are stacked apart)."""

_INPUTS = {"encoder": "obs", "dynamics": "za", "reward": "za", "pi": "z", "termination": "z"}
"""What each component's first layer reads: official order [x, task embedding, action]."""

_IGNORED = re.compile(r"^(_detach_Qs_params|_target_Qs_params|_target_Qs\.params)\."
                      r"|^(log_std_min|log_std_dif|_action_masks|_task_emb\.weight)$"
                      r"|\.__(batch_size|device)$")
"""Keys read apart (task embedding, masks, log-std bounds) or not needed to act (the
detached and target Q copies, TensorDict bookkeeping)."""

_STACKED_2023 = ("weight", "bias", "ln.weight", "ln.bias")

Layer = dict[str, Tensor]


def _layers(state: dict[str, Tensor], prefix: str) -> list[Layer]:
    """``prefix.{i}.{name}`` tensors as a list over i (missing indices stay empty)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.+)$")
    found: dict[int, Layer] = {}
    for key, value in state.items():
        match = pattern.match(key)
        if match:
            found.setdefault(int(match[1]), {})[match[2]] = value
    return [found.get(i, {}) for i in range(max(found, default=-1) + 1)]


def _q_heads(state: dict[str, Tensor], path: Path) -> tuple[str, list[list[Layer]]]:
    """The layout and the Q ensemble as one layer list per head."""
    flat = {k: v for k, v in state.items() if re.fullmatch(r"_Qs\.params\.\d+", k)}
    if flat:  # 2023: _Qs.params.N, four tensors per hidden layer, two for the output
        stacked = {f"{n // 4}.{_STACKED_2023[n % 4]}": v
                   for n, v in ((int(k.rsplit(".", 1)[1]), v) for k, v in flat.items())}
        layout = "2023"
    else:
        stacked = {k[len("_Qs.params."):]: v for k, v in state.items()
                   if k.startswith("_Qs.params.") and not k.endswith(("__batch_size", "__device"))}
        layout = "current"
    layers = _layers({f"q.{k}": v for k, v in stacked.items()}, "q")
    num_q = {v.shape[0] for layer in layers for v in layer.values()}
    if len(num_q) != 1:
        raise ValueError(f"{path}: Q ensemble tensors disagree on the number of heads "
                         f"({sorted(num_q)})" if num_q
                         else f"{path}: missing keys: the Q ensemble (_Qs.params.*)")
    return layout, [[{name: v[q] for name, v in layer.items()} for layer in layers]
                    for q in range(num_q.pop())]


@dataclass(frozen=True)
class OfficialCheckpoint:
    """An official TD-MPC2 checkpoint, read and checked; ``agent`` builds ours from it."""

    path: Path
    layout: str
    """``"current"`` or ``"2023"`` (see the module docstring)."""
    networks: dict[str, list[Layer]]
    """Per component (encoder, dynamics, reward, pi, Q0.., termination) the official
    layers in order, each {"weight", "bias"[, "ln.weight", "ln.bias"]}."""
    task_emb: Tensor | None
    """Raw task embedding [tasks, task_dim] of a multi-task model."""
    action_masks: Tensor | None
    """Per-task action masks [tasks, action_dim] (current multi-task layout only)."""
    log_std: tuple[float, float]
    """Bounds of the policy's log standard deviation."""
    tasks: tuple[str, ...] | None
    """Task names in embedding order, where known (JSON card, or MT30/MT80)."""

    @cached_property
    def architecture(self) -> dict[str, Any]:
        """Widths and counts read from the weight shapes."""
        nets, task_dim = self.networks, 0 if self.task_emb is None else self.task_emb.shape[1]
        latent = nets["encoder"][-1]["weight"].shape[0]
        return {"obs_dim": nets["encoder"][0]["weight"].shape[1] - task_dim,
                "action_dim": nets["pi"][-1]["weight"].shape[0] // 2,
                "latent_dim": latent, "enc_dim": nets["encoder"][0]["weight"].shape[0],
                "mlp_dim": nets["dynamics"][0]["weight"].shape[0],
                "num_enc_layers": len(nets["encoder"]),
                "num_q": sum(name.startswith("Q") for name in nets),
                "num_bins": nets["reward"][-1]["weight"].shape[0], "task_dim": task_dim,
                "num_tasks": 0 if self.task_emb is None else self.task_emb.shape[0],
                "termination": "termination" in nets}

    @property
    def multitask(self) -> bool:
        return self.task_emb is not None

    def task_index(self, task: str | int | None) -> int:
        """The embedding row of a task name or index.

        Raises:
            ValueError: no task for a multi-task model, or one it does not know.
        """
        count = self.architecture["num_tasks"]
        names = (f"known: {', '.join(self.tasks)}, or an index 0..{count - 1}" if self.tasks
                 else f"its task names are unknown (no {self.path.with_suffix('.json').name} "
                      f'card with "tasks": [...] beside it): pass an index 0..{count - 1}')
        if task is None:
            raise ValueError(f"{self.path} is a multi-task model over {count} tasks: choose "
                             f"one with --task ({names})")
        if isinstance(task, int) or str(task).isdigit():
            if 0 <= int(task) < count:
                return int(task)
        elif self.tasks and task in self.tasks:
            return self.tasks.index(task)
        raise ValueError(f"unknown task {task!r} of {self.path} ({names})")

    def agent(self, task: str | int | None = None, obs_dim: int | None = None,
              action_dim: int | None = None, planner: PlannerConfig | None = None,
              discount: float = 0.99, seed: int = 0) -> TDMPC2Agent:
        """Our acting agent with exactly the official weights.

        Args:
            task: name or embedding row of the task to fold in (multi-task models only).
            obs_dim: the env's observation size: a multi-task model drops its zero-padding
                columns beyond it; a single-task model must match it.
            action_dim: the env's action size: a multi-task model drops the action columns
                its mask (or, without masks, the official leading-dims rule) zeroes.
            planner: MPPI settings (default: the official ones, = ``PlannerConfig()``).
            discount: return discount of the planner's value estimates.
            seed: seeds the planner.

        Raises:
            ValueError: a task for a single-task model (or none for a multi-task one), or
                env dimensions that do not fit the model.
        """
        arch = self.architecture
        emb, obs_keep, act_keep = self._task_inputs(task, obs_dim, action_dim)
        cfg = ModelConfig(obs_dim=len(obs_keep), action_dim=len(act_keep),
                          latent_dim=arch["latent_dim"], mlp_dim=arch["mlp_dim"],
                          enc_dim=arch["enc_dim"], num_enc_layers=arch["num_enc_layers"],
                          num_q=arch["num_q"], num_bins=arch["num_bins"],
                          log_std_min=self.log_std[0], log_std_max=self.log_std[1],
                          termination=arch["termination"])
        agent = TDMPC2Agent(cfg, planner or PlannerConfig(), discount, seed=seed)
        latent, task_dim = cfg.latent_dim, arch["task_dim"]
        keep = {"obs": obs_keep, "z": list(range(latent)),
                "za": [*range(latent), *(latent + task_dim + j for j in act_keep)]}
        width = {"obs": arch["obs_dim"] + task_dim, "z": latent + task_dim,
                 "za": latent + task_dim + arch["action_dim"]}
        with torch.no_grad():
            for name, module in agent.model.components().items():
                layers = list(self.networks[name])
                first = _INPUTS.get(name, "za")
                if layers[0]["weight"].shape[1] != width[first]:
                    raise ValueError(f"{self.path}: {name} reads {layers[0]['weight'].shape[1]}"
                                     f" inputs, expected {width[first]} for this architecture")
                start = arch["obs_dim"] if first == "obs" else latent
                layers[0] = _fold_first(layers[0], keep[first], start, emb)
                if name == "pi":  # outputs [mean, log_std]: keep the env's action dims
                    rows = [*act_keep, *(arch["action_dim"] + j for j in act_keep)]
                    layers[-1] = {k: v[rows] for k, v in layers[-1].items()}
                _copy(module, layers, f"{self.path}: {name}")
            agent.model.target_Qs.load_state_dict(agent.model.Qs.state_dict())
        agent.meta = self._meta(task, obs_keep, act_keep, discount, agent.planner_cfg)
        return agent

    def _task_inputs(self, task: str | int | None, obs_dim: int | None, action_dim: int | None
                     ) -> tuple[Tensor | None, list[int], list[int]]:
        """(task embedding to fold, observation columns kept, action dims kept)."""
        arch = self.architecture
        full_obs, full_act = arch["obs_dim"], arch["action_dim"]
        if not self.multitask:
            if task is not None:
                raise ValueError(f"{self.path} is a single-task model: it has no task {task!r}")
            for given, have, what in ((obs_dim, full_obs, "observation"),
                                      (action_dim, full_act, "action")):
                if given is not None and given != have:
                    raise ValueError(f"{self.path} was trained with {what} size {have}, "
                                     f"the env has {given}: pick the env it was trained on")
            return None, list(range(full_obs)), list(range(full_act))
        index = self.task_index(task)
        if obs_dim is not None and not 0 < obs_dim <= full_obs:
            raise ValueError(f"env observation size {obs_dim} does not fit {self.path}, whose "
                             f"observations are zero-padded to {full_obs}")
        acts = list(range(full_act))
        if action_dim is not None:
            mask = (self.action_masks[index] if self.action_masks is not None
                    else torch.arange(full_act) < action_dim)
            acts = mask.nonzero()[:, 0].tolist()
            if len(acts) != action_dim:
                raise ValueError(f"task {index} of {self.path} acts in {len(acts)} of its "
                                 f"{full_act} action dims, the env has {action_dim}")
        emb = F.embedding(torch.tensor([index]), self.task_emb.clone(), max_norm=1.0)[0]
        return emb, list(range(obs_dim or full_obs)), acts

    def _meta(self, task: str | int | None, obs_keep: list[int], act_keep: list[int],
              discount: float, planner: PlannerConfig) -> dict[str, Any]:
        arch = self.architecture
        meta: dict[str, Any] = {
            "source": SOURCE, "layout": self.layout, "checkpoint": self.path.name,
            "model_size": model_size(arch),
            "official_config": {**arch, "log_std_min": self.log_std[0],
                                "log_std_max": self.log_std[1], "simnorm_dim": 8, "vmin": -10,
                                "vmax": 10, "discount": discount, **dataclasses.asdict(planner)}}
        if self.multitask:
            index = self.task_index(task)
            meta.update(task_index=index, official_task=self.tasks[index] if self.tasks
                        else None, observation_columns=len(obs_keep), action_columns=act_keep)
        return meta


def _fold_first(layer: Layer, keep: list[int], start: int, emb: Tensor | None) -> Layer:
    """First layer reading only the ``keep`` input columns, with the task embedding (the
    ``task_dim`` columns from ``start``) folded into its bias; in float64, so folding adds
    no rounding of its own."""
    weight = layer["weight"]
    out = {**layer, "weight": weight[:, keep]}
    if emb is not None:
        emb_weight = weight[:, start:start + emb.shape[0]].double()
        out["bias"] = (layer["bias"].double() + emb_weight @ emb.double()).float()
    return out


def _copy(module: nn.Module, layers: list[Layer], where: str) -> None:
    """Official layer i -> our i-th Linear (and i-th LayerNorm where it has one)."""
    linears = [m for m in module if isinstance(m, nn.Linear)]
    norms = [m for m in module if isinstance(m, nn.LayerNorm)]
    if len(layers) != len(linears):
        raise ValueError(f"{where} has {len(layers)} layers, expected {len(linears)}")
    for i, layer in enumerate(layers):
        targets = {"weight": linears[i].weight, "bias": linears[i].bias}
        if i < len(norms):
            targets.update({"ln.weight": norms[i].weight, "ln.bias": norms[i].bias})
        missing = sorted(set(targets) - set(layer))
        if missing or set(layer) - set(targets):
            raise ValueError(f"{where} layer {i}: missing keys {missing}, unexpected "
                             f"{sorted(set(layer) - set(targets))}")
        for name, target in targets.items():
            if layer[name].shape != target.shape:
                raise ValueError(f"{where} layer {i} {name} has shape "
                                 f"{tuple(layer[name].shape)}, expected {tuple(target.shape)}")
            target.copy_(layer[name])


def read_official(path: str | Path) -> OfficialCheckpoint:
    """Reads and checks an official TD-MPC2 checkpoint (either layout, state observations).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or truncated, not an official TD-MPC2 model, missing keys
            (named), unexpected ones (pixel encoders are not supported), or a task card
            that does not fit.
    """
    path = Path(path)
    data = load_weights(path)
    state = data.get("model", data) if isinstance(data, dict) else None
    official = (*(f"{p}." for p in _NETWORKS.values()), "_Qs.params.")
    if not isinstance(state, dict) or not any(str(k).startswith(official) for k in state):
        raise ValueError(f"{path} is not an official TD-MPC2 checkpoint (expected "
                         '{"model": state_dict} with _encoder/_dynamics/_Qs weights)')
    layout, heads = _q_heads(state, path)
    networks = {name: _layers(state, prefix) for name, prefix in _NETWORKS.items()}
    missing = [f"{prefix}.*" for name, prefix in _NETWORKS.items()
               if not networks[name] and name != "termination"]
    if missing:
        raise ValueError(f"{path}: missing keys {', '.join(missing)} (an official TD-MPC2 "
                         "checkpoint with state observations has all of them)")
    if not networks["termination"]:
        del networks["termination"]
    networks.update({f"Q{i}": layers for i, layers in enumerate(heads)})
    unexpected = [k for k in state if not k.startswith(official) and not _IGNORED.search(k)]
    if unexpected:
        raise ValueError(f"{path}: unexpected keys {unexpected[:5]} (rlprune reads official "
                         "models with state observations)")
    absent = [f"{name} layer {i} {key}" for name, layers in networks.items()
              for i, layer in enumerate(layers) for key in ("weight", "bias") if key not in layer]
    if absent:
        raise ValueError(f"{path}: missing keys: {', '.join(absent[:5])}")
    emb = state.get("_task_emb.weight")
    low = float(state.get("log_std_min", -10.0))
    log_std = (low, low + float(state.get("log_std_dif", 12.0)))
    return OfficialCheckpoint(path, layout, networks,
                              None if emb is None else emb.float(), state.get("_action_masks"),
                              log_std, None if emb is None else task_names(path, emb.shape[0]))


def load_official_agent(path: str | Path, task: str | int | None = None, *,
                        planner: PlannerConfig | None = None, seed: int = 0) -> TDMPC2Agent:
    """An official checkpoint as our agent, set up for the env of its task.

    ``task`` picks the embedding row of a multi-task model (a name or an index) and names
    the env a single-task model acts in (default: a DMC task name in the file stem, as in
    ``5M-walker-run.pt``). Where our envs run that task, the agent is fitted to the env's
    dimensions and ``meta`` records the env spec and the official action repeat, so
    evaluation needs no ``--env``; the discount follows the official heuristic from the
    task's episode length (DMC: 500 agent steps -> 0.99).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a damaged or foreign file, an unknown task, or a single-task ``task``
            that names no env rlprune runs or one of other dimensions.
    """
    ckpt = read_official(path)
    index, setup = _task_of(ckpt, task)
    dims = _env_dims(setup.spec) if setup and setup.spec else None
    if not ckpt.multitask:
        if task is None and dims != (ckpt.architecture["obs_dim"],
                                     ckpt.architecture["action_dim"]):
            setup, dims = None, None  # no task in the file name, or a misleading one
        if task is not None and dims is None:
            raise ValueError(f"task {task!r} of single-task {ckpt.path} names no env rlprune "
                             "runs (a DMC task such as walker-run); give none and pass the "
                             "env at evaluation instead")
    length = setup.episode_length if setup else 500
    discount = heuristic_discount(length, TrainConfig())
    agent = ckpt.agent(index, *(dims or (None, None)), planner=planner, discount=discount,
                       seed=seed)
    agent.meta["official_task"] = setup.name if setup else None
    agent.meta["official_config"]["episode_length"] = length
    if dims:
        agent.meta.update(task=setup.spec, action_repeat=setup.action_repeat)
    return agent


def _task_of(ckpt: OfficialCheckpoint, task: str | int | None
             ) -> tuple[int | None, TaskSetup | None]:
    """(embedding row, official setup) of the task a checkpoint is to act in, where known."""
    if ckpt.multitask:
        index = ckpt.task_index(task)
        return index, task_setup(ckpt.tasks[index]) if ckpt.tasks else None
    name = str(task) if task is not None else dmc_task_in(ckpt.path.stem,
                                                          envs.dmc_task_names())
    return None, task_setup(name) if name else None


def _env_dims(spec: str) -> tuple[int, int] | None:
    """(observation size, action size) of an env spec, or None where our envs lack it
    (the official code's custom DMC tasks)."""
    try:
        env = envs.make_env(spec)
    except ValueError:
        return None
    dims = (env.observation_space.shape[0], env.action_space.shape[0])
    env.close()
    return dims
