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

from rlprune.adapters.base import AgentAdapter

__all__ = ["ExportedGraph", "export_onnx", "onnx_graph"]


@dataclass(frozen=True)
class ExportedGraph:
    """One exported ONNX file and its agreement with PyTorch."""

    name: str
    path: str
    max_abs_error: float
    """Largest |onnxruntime - torch| output difference on random test inputs."""


def _names(prefix: str, count: int) -> list[str]:
    """``input``/``output`` alone; ``input``, ``input_1``... for several."""
    return [prefix if i == 0 else f"{prefix}_{i}" for i in range(count)]


def onnx_graph(module: torch.nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...],
               path: str | Path) -> None:
    """Writes ``module`` as ONNX with a dynamic batch dimension (inputs ``input``,
    ``input_1``... and outputs ``output``, ``output_1``...: a recurrent policy takes and
    returns its state, batch on its axis 1 as torch's LSTM keeps it)."""
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
                          output_names=names, dynamic_axes=axes)


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
    return exported
