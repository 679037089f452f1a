"""ONNX export of (pruned) controllers, checked against PyTorch in onnxruntime.

Each adapter names its exportable graphs (``export_graphs()``): ``policy`` maps a raw
observation to the env's action deterministically (TD-MPC2: encoder + policy prior, i.e.
policy-only control without MPPI; SB3: the actor with its squashing and rescaling, so
it matches ``model.predict(obs, deterministic=True)``), and world-model components are
exported one by one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlprune.adapters.base import AgentAdapter, PlannerAdapter

__all__ = ["ExportedGraph", "export_onnx", "onnx_graph"]


@dataclass(frozen=True)
class ExportedGraph:
    """One exported ONNX file and its agreement with PyTorch."""

    name: str
    path: str
    max_abs_error: float
    """Largest |onnxruntime - torch| output difference on random test inputs."""


def _expm1(graph, x):
    """exp(x) - 1: ONNX has no expm1 (TD-MPC2's symexp decodes values with it); the
    exported graph loses its precision near 0, far below the checks' tolerance."""
    return graph.op("Sub", graph.op("Exp", x), graph.op("Constant",
                                                        value_t=torch.tensor(1.0)))


torch.onnx.register_custom_op_symbolic("aten::expm1", _expm1, 9)


def _names(prefix: str, count: int) -> list[str]:
    """``input``/``output`` alone; ``input``, ``input_1``... for several."""
    return [prefix if i == 0 else f"{prefix}_{i}" for i in range(count)]


def onnx_graph(module: torch.nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...],
               path: str | Path, dynamic: bool = True) -> None:
    """Writes ``module`` as ONNX with a dynamic batch dimension (inputs ``input``,
    ``input_1``... and outputs ``output``, ``output_1``...: a recurrent policy takes and
    returns its state, batch on its axis 1 as torch's LSTM keeps it); ``dynamic=False``:
    at the example's shapes."""
    module.eval()
    examples = example if isinstance(example, tuple) else (example,)
    with torch.no_grad():
        outputs = module(*examples)
    count = len(outputs) if isinstance(outputs, tuple) else 1
    inputs, names = _names("input", len(examples)), _names("output", count)
    axes = {name: {0 if i == 0 else 1: "batch"} for i, name in enumerate(inputs)}
    axes.update({name: {0 if i == 0 else 1: "batch"} for i, name in enumerate(names)})
    with warnings.catch_warnings():
        # torch 2.13 flags the TorchScript exporter as legacy; it needs no onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, examples, str(path), dynamo=False, input_names=inputs,
                          output_names=names, dynamic_axes=axes if dynamic else None)


def export_onnx(agent: AgentAdapter, out_dir: str | Path, atol: float = 1e-4,
                seed: int = 0) -> list[ExportedGraph]:
    """Writes ``OUT_DIR/<graph>.onnx`` for every graph the agent exports and checks them.

    Raises:
        ImportError: onnx/onnxruntime missing (``pip install 'rlprune[onnx]'``).
        ValueError: an exported graph disagrees with PyTorch beyond ``atol``.
    """
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("ONNX export needs onnxruntime: pip install 'rlprune[onnx]'") from e
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    exported = []
    for name, (module, example) in agent.export_graphs().items():
        path = out_dir / f"{name}.onnx"
        onnx_graph(module, example, path)
        examples = example if isinstance(example, tuple) else (example,)
        tests = [torch.randn(*[16 if d == (0 if i == 0 else 1) else n
                               for d, n in enumerate(e.shape)], generator=generator)
                 for i, e in enumerate(examples)]
        with torch.no_grad():
            expected = module(*tests)
        expected = expected if isinstance(expected, tuple) else (expected,)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, dict(zip(_names("input", len(tests)),
                                         (t.numpy() for t in tests))))
        error = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
        if error > atol:
            raise ValueError(f"{path}: ONNX output differs from PyTorch by {error:.2e}")
        exported.append(ExportedGraph(name, str(path), error))
    planning = agent.plan_step() if isinstance(agent, PlannerAdapter) else None
    if planning is not None:
        exported.append(_export_plan_step(*planning, out_dir / "mppi_step.onnx", atol))
    return exported


def _export_plan_step(module: torch.nn.Module, example: tuple[torch.Tensor, ...],
                      path: Path, atol: float) -> ExportedGraph:
    """A planner's whole step for one env (static shapes: its random numbers are inputs),
    checked on the example's own inputs: random latents would not do, its choices (top-k
    elites, the drawn sequence) are discrete."""
    import onnxruntime

    onnx_graph(module, example, path, dynamic=False)
    with torch.no_grad():
        expected = module(*example)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), example)})
    error = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
    if error > atol:
        raise ValueError(f"{path}: ONNX output differs from PyTorch by {error:.2e}")
    return ExportedGraph("mppi_step", str(path), error)
