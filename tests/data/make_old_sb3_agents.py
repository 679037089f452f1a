"""Writes the SB3 2.0.0 agents in this folder (run it in a venv with that release).

    python -m venv /tmp/oldsb3 && /tmp/oldsb3/bin/pip install torch==2.13.0 \
        stable-baselines3==2.0.0 && /tmp/oldsb3/bin/python tests/data/make_old_sb3_agents.py
"""

import gymnasium as gym
import torch
from stable_baselines3 import PPO, SAC

torch.set_num_threads(1)
env = gym.make("Pendulum-v1")
sac = SAC("MlpPolicy", env, seed=0, device="cpu", learning_starts=50,
          policy_kwargs={"net_arch": [32, 32]})
sac.learn(300)
sac.save("tests/data/sac-pendulum-sb3-2.0.0.zip")
ppo = PPO("MlpPolicy", env, seed=0, device="cpu", n_steps=64, batch_size=32,
          policy_kwargs={"net_arch": [32, 32]})
ppo.learn(128)
ppo.save("tests/data/ppo-pendulum-sb3-2.0.0.zip")
