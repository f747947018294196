"""The training methods this tool ships, registered in the order a recipe lists its policies. Adding a method is
one module in this package (its section, its stage, its TRL trainer: docs/architecture.md) and one line here."""

from ..config.methods import register_methods

BUILTIN = (
    "ppo",
    "dpo",
    "kto",
    "simpo",
    "orpo",
    "rloo",
    "grpo",
    "online_dpo",
    "rsft",
)
METHODS = register_methods(*(f"{__package__}.{name}" for name in BUILTIN))
