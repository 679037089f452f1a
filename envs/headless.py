"""Process settings every env needs, applied when ``envs`` is imported (before MuJoCo is).

Rendering is headless through EGL unless a display or ``MUJOCO_GL`` says otherwise. Gymnasium's
own MuJoCo models (HalfCheetah...) raise a compiler deprecation warning at every load that
says nothing to a user; it is dropped, MuJoCo's other warnings still reach stderr (through
absl once dm_control is imported, which installs its own handler).
"""

import logging
import os
import sys

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

import mujoco  # noqa: E402 - after MUJOCO_GL

_NOISE = "'settotalmass' is deprecated"


def _warning(message: str) -> None:
    if _NOISE not in message:
        print(f"WARNING: {message}", file=sys.stderr)


mujoco.set_mju_user_warning(_warning)
logging.getLogger("absl").addFilter(lambda record: _NOISE not in record.getMessage())
