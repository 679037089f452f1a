"""Run a controller's networks on another backend: compiled, bfloat16 or ONNX Runtime.

A backend replaces the ``forward`` of every network ``act`` calls (the adapter's
``acting_networks``) in a copy of the agent, so the controller around them (MPPI's
sampling and ranking, an env-facing policy) runs unchanged and is timed and evaluated as
it will act. Results stay seeded and reproducible on a given backend; bfloat16 changes
actions (``rlprune eval --backend bf16`` reports the returns it keeps).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rlprune.adapters.base import AgentAdapter, PlannerAdapter
from rlprune.export import onnx_graph

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "backend_named", "on_backend",
           "register_backend"]


class BackendUnavailable(ValueError):
    """The backend cannot run on this machine (no bfloat16 instructions, no compiler...)."""


@dataclass(frozen=True)
class Backend:
    """A way to run networks: ``apply(network, example input)`` replaces its forward in
    place; ``missing()`` says why this machine cannot (None: it can).

    A whole-step backend (``plans`` set) runs a planner's whole refinement as one graph
    instead: ``plans(step)`` turns the planning module into the function that runs it
    (``apply`` still times single layers for the latency model's table)."""

    name: str
    description: str
    apply: Callable[[nn.Module, torch.Tensor], None]
    missing: Callable[[], str | None] = lambda: None
    plans: Callable[[nn.Module], Callable] | None = None


BACKENDS: dict[str, Backend] = {}
"""Backends by name (``--backend NAME``)."""


def register_backend(backend: Backend) -> None:
    BACKENDS[backend.name] = backend


def backend_named(name: str) -> Backend:
    """The backend ``name``, checked to run here.

    Raises:
        ValueError: unknown backend.
        BackendUnavailable: the backend cannot run on this machine (the reason).
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    reason = backend.missing()
    if reason:
        raise BackendUnavailable(f"backend {name} is not available here: {reason}")
    return backend


def on_backend(agent: AgentAdapter, name: str) -> AgentAdapter:
    """A copy of ``agent`` whose acting networks run on backend ``name``.

    Raises:
        ValueError: unknown backend, or an agent that acts through code rlprune does not
            own (no acting networks).
        BackendUnavailable: the backend cannot run on this machine (the reason).
    """
    backend = backend_named(name)
    if name == "eager":
        return agent
    copy = agent.clone()
    if backend.plans is not None:
        if not isinstance(copy, PlannerAdapter):
            raise ValueError(f"{copy.kind} agent does not plan: backend {name} runs a "
                             "planner's whole step")
        copy.plan_through(backend.plans)
        return copy
    networks = copy.acting_networks()
    if not networks:
        raise ValueError(f"{copy.kind} agent acts through code rlprune does not run on a "
                         "backend; only the eager backend times it")
    examples = {n: c.example_input for n, c in copy.components().items()}
    for network_name, network in networks.items():
        backend.apply(network, examples[network_name])
    return copy


def _bf16(network: nn.Module, example: torch.Tensor) -> None:
    network.to(torch.bfloat16)
    forward = network.forward
    network.forward = lambda x: forward(x.to(torch.bfloat16)).float()


def _compiled(network: nn.Module, example: torch.Tensor) -> None:
    # Static shapes: one graph per row count a network is called with (a control step
    # uses two or three; a batch of episodes a few more), and inductor's CPU kernels for
    # fixed shapes ran the cartpole planner's step 1.4x faster than shape-generic ones.
    # Every network is an nn.Sequential: they share one forward code object, and dynamo's
    # default of 8 graphs per code object would send the rest back to eager.
    dynamo = torch._dynamo.config
    dynamo.recompile_limit = max(dynamo.recompile_limit, 256)
    dynamo.accumulated_recompile_limit = max(dynamo.accumulated_recompile_limit, 4096)
    network.forward = torch.compile(network.forward, dynamic=False)


def _compiled_bf16(network: nn.Module, example: torch.Tensor) -> None:
    _bf16(network, example)
    _compiled(network, example)


def _onnxruntime(network: nn.Module, example: torch.Tensor) -> None:
    """One session with a dynamic batch dimension."""
    network.forward = _session(network, example, dynamic=True)


def _compiled_step(step: nn.Module) -> Callable:
    _compiled(step, None)
    return step


def _compiled_bf16_step(step: nn.Module) -> Callable:
    for network in step.model.components().values():
        _bf16(network, None)
    return _compiled_step(step)


def _onnxruntime_step(step: nn.Module) -> Callable:
    """One ONNX Runtime session per batch size, each exported when first needed."""
    sessions: dict[int, Callable] = {}

    def run(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rows = len(inputs[0])
        if rows not in sessions:
            sessions[rows] = _session(step, inputs)
        return sessions[rows](*inputs)

    return run


def _session(module: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...],
             dynamic: bool = False) -> Callable:
    """``module`` exported (at ``example``'s shapes unless ``dynamic``: any batch size)
    and run by ONNX Runtime; returns a tensor, or a tuple of them for several outputs."""
    import onnxruntime

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "graph.onnx"
        onnx_graph(module, example, path, dynamic=dynamic)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as torch is set to use
        options.inter_op_num_threads = 1
        # Threads that spin between the planner's many small calls steal its CPU.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(path), options,
                                               providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outputs = session.run(None, {n: x.detach().numpy() for n, x in zip(names, inputs)})
        tensors = tuple(torch.from_numpy(o) for o in outputs)
        return tensors if len(tensors) > 1 else tensors[0]

    return run


def _no_bf16() -> str | None:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if not any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16")):
        return "this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16): emulated, it " \
               "would run slower than float32"
    return None


def _no_compiler() -> str | None:
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on CPU needs a C++ compiler (g++ or clang++) on PATH"
    return None


def _no_onnxruntime() -> str | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install 'rlprune[onnx]')"
    return None


register_backend(Backend("eager", "PyTorch as it is (float32)", lambda network, example: None))
register_backend(Backend("bf16", "PyTorch, weights and activations in bfloat16", _bf16,
                         _no_bf16))
register_backend(Backend("compile", "torch.compile (inductor, C++ kernels)", _compiled,
                         _no_compiler))
register_backend(Backend("compile-bf16", "torch.compile in bfloat16", _compiled_bf16,
                         lambda: _no_bf16() or _no_compiler()))
register_backend(Backend("onnxruntime", "each network as an ONNX Runtime session",
                         _onnxruntime, _no_onnxruntime))
register_backend(Backend("compile-step", "torch.compile of a planner's whole step (one "
                         "graph: iterations, samples, horizon)", _compiled, _no_compiler,
                         plans=_compiled_step))
register_backend(Backend("compile-bf16-step", "the same in bfloat16", _compiled_bf16,
                         lambda: _no_bf16() or _no_compiler(), plans=_compiled_bf16_step))
register_backend(Backend("onnxruntime-step", "a planner's whole step exported to ONNX and "
                         "run by ONNX Runtime", _onnxruntime, _no_onnxruntime,
                         plans=_onnxruntime_step))
