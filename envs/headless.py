"""Process settings every env needs, applied when ``envs`` is imported (before MuJoCo is).

Rendering is headless through EGL unless a display or ``MUJOCO_GL`` says otherwise; once
dm_control is imported it logs every MuJoCo compiler warning, and Gymnasium's own MuJoCo
models (HalfCheetah...) raise a deprecation one at each load that says nothing to a user.
"""

import logging
import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

logging.getLogger("absl").addFilter(
    lambda record: "'settotalmass' is deprecated" not in record.getMessage())
