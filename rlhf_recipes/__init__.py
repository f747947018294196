"""rlhf-recipes: simulated-preference RLHF recipes (reward model, PPO, DPO) on top of Hugging Face TRL."""

__version__ = "0.1.0"
