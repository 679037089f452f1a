"""Rollout videos: one seeded episode of one or more agents, side by side, each frame
labelled with the agent and its return so far, so a person can watch what pruning did.

The episode is the evaluator's own (same env, wrappers, perturbations and seed), so the
return written on the last frame is the one ``eval`` reports for that seed.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs
from rlprune.adapters.base import AgentAdapter
from rlprune.analysis.evaluate import ClosedLoopEvaluator
from rlprune.io import atomic_write

__all__ = ["Rollout", "check_video_path", "film_sweep", "record_rollout", "record_video",
           "side_by_side", "write_video"]

VIDEO_SUFFIXES = (".gif", ".mp4")


@dataclass
class Rollout:
    """One rendered episode: its frames (every ``stride``-th step) and its return."""

    label: str
    frames: list[np.ndarray]
    episode_return: float
    steps: int


def check_video_path(path: str | Path) -> Path:
    """The path, checked before any episode runs.

    Raises:
        ValueError: an unknown suffix, MP4 without imageio-ffmpeg, or a folder that does
            not exist or cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video {path}: give a .gif or .mp4 file name")
    if path.suffix.lower() == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ValueError(f"video {path}: MP4 needs imageio-ffmpeg (pip install "
                         "'rlprune[video]'); a .gif needs nothing more")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ValueError(f"video {path}: cannot write into {folder} (no such folder, or "
                         "not writable)")
    return path


def record_rollout(agent: AgentAdapter, evaluator: ClosedLoopEvaluator, label: str,
                   seed: int | None = None, max_frames: int = 200) -> Rollout:
    """Runs the evaluator's episode of ``seed`` (default: its first) with rendering.

    Raises:
        ValueError: the env cannot render frames.
    """
    seed = evaluator.seed if seed is None else seed
    evaluator.check_agent(agent)
    with warnings.catch_warnings():  # gymnasium warns of a render mode it then refuses
        warnings.simplefilter("ignore")
        try:
            env = envs.make_env(evaluator.env_spec, render_mode="rgb_array",
                                **evaluator.options, **evaluator.env_kwargs)
        except (TypeError, AssertionError, gym.error.Error) as e:
            raise ValueError(f"{evaluator.env_spec} cannot render frames ({e})") from e
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise ValueError(f"{evaluator.env_spec} cannot render frames (its render modes: "
                         f"{env.metadata.get('render_modes', [])})")
    try:
        agent.reset(seed)
        obs, _ = env.reset(seed=seed)
        frames, total, first = [_frame(env)], 0.0, True
        while True:
            action = np.asarray(agent.act(np.asarray(obs)[None], np.array([first])))[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total, first = total + float(reward), False
            frames.append(_label(_frame(env), f"{label}  return {total:.1f}"))
            if terminated or truncated:
                break
    finally:
        env.close()
    stride = max(1, -(-len(frames) // max_frames))
    kept = frames[::stride]
    if kept[-1] is not frames[-1]:
        kept.append(frames[-1])  # the last frame carries the final return
    return Rollout(label, kept, total, len(frames) - 1)


def _frame(env) -> np.ndarray:
    frame = env.render()
    if frame is None or np.asarray(frame).ndim != 3:
        raise ValueError(f"{env.spec.id if env.spec else env}: render() gave no RGB frame")
    return np.ascontiguousarray(np.asarray(frame, dtype=np.uint8)[..., :3])


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with ``text`` on a dark band along its top."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, image.width, 14], fill=(0, 0, 0))
    draw.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(image)


def side_by_side(rollouts: list[Rollout]) -> list[np.ndarray]:
    """Frames of several rollouts next to each other (a finished one holds its last frame;
    heights are padded to the tallest)."""
    length = max(len(r.frames) for r in rollouts)
    height = max(r.frames[0].shape[0] for r in rollouts)
    gap = np.full((height, 4, 3), 255, dtype=np.uint8)
    joined = []
    for t in range(length):
        parts = []
        for r in rollouts:
            frame = r.frames[min(t, len(r.frames) - 1)]
            pad = height - frame.shape[0]
            parts += [np.pad(frame, ((0, pad), (0, 0), (0, 0))), gap]
        joined.append(np.concatenate(parts[:-1], axis=1))
    return joined


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 25) -> Path:
    """A GIF (Pillow) or MP4 (imageio-ffmpeg) of the frames, written atomically."""
    import imageio.v3 as iio

    path = check_video_path(path)
    suffix = path.suffix.lower()
    options = {"duration": 1000 / fps, "loop": 0} if suffix == ".gif" else {"fps": fps}
    return atomic_write(path, lambda tmp: iio.imwrite(tmp, np.stack(frames), extension=suffix,
                                                      **options))


def record_video(agents: Mapping[str, AgentAdapter], evaluator: ClosedLoopEvaluator,
                 path: str | Path, seed: int | None = None,
                 max_frames: int = 200) -> tuple[Path, list[Rollout]]:
    """One episode of each agent on the same seed, side by side, written to ``path``."""
    check_video_path(path)
    rollouts = [record_rollout(agent, evaluator, label, seed, max_frames)
                for label, agent in agents.items()]
    return write_video(side_by_side(rollouts), path), rollouts


def film_sweep(dense: AgentAdapter, rows: list[dict], out: Path,
               evaluator: ClosedLoopEvaluator, load) -> Path:
    """The dense agent beside every method's agent at the sweep's highest target, on the
    evaluator's first episode: ``OUT/rollout_dense_vs_....gif``.

    Args:
        load: ``path -> agent`` for the rows' kept agent files.
    """
    hardest = max(r["target"] for r in rows if r["method"] != "dense")
    agents = {"dense": dense} | {r["method"]: load(out / r["agent_file"]) for r in rows
                                 if r["method"] != "dense" and r["target"] == hardest
                                 and r.get("agent_file")}
    return record_video(agents, evaluator, out / f"rollout_{'_vs_'.join(agents)}.gif")[0]
