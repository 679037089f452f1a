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


def onnx_graph(module: torch.nn.Module, example: torch.Tensor, path: str | Path) -> None:
    """Writes ``module`` as ONNX with a dynamic batch dimension (input ``input``, output
    ``output``)."""
    module.eval()
    with warnings.catch_warnings():
        # torch 2.13 flags the TorchScript exporter as legacy; it needs no onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (example,), str(path), dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


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
        test = torch.randn(16, *example.shape[1:], generator=generator)
        with torch.no_grad():
            expected = module(test).numpy()
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": test.numpy()})[0]
        error = float(np.abs(got - expected).max())
        if error > atol:
            raise ValueError(f"{path}: ONNX output differs from PyTorch by {error:.2e}")
        exported.append(ExportedGraph(name, str(path), error))
    return exported
