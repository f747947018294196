"""Training health: a NaN or infinite loss or reward stops the stage at once, with the step and the
likely cause, instead of training on garbage for hours."""

import math

from transformers import TrainerCallback

from ..errors import RecipeError

WATCHED = (
    "loss",
    "grad_norm",
    "objective/scores",
    "objective/kl",
    "loss/policy_avg",
    "loss/value_avg",
    "rewards/margins",
)


class TrainingDiverged(RecipeError):
    pass


class FiniteTraining(TrainerCallback):
    def __init__(self, stage: str, learning_rate: float):
        self.stage, self.learning_rate = stage, learning_rate

    def on_log(self, args, state, control, logs=None, **kwargs):
        bad = {
            key: value
            for key, value in (logs or {}).items()
            if key in WATCHED and isinstance(value, float) and not math.isfinite(value)
        }
        if bad:
            values = ", ".join(f"{key} = {value}" for key, value in bad.items())
            raise TrainingDiverged(
                f"{self.stage}: training diverged at step {state.global_step}: {values}. Likely cause: a learning rate "
                f"too high for this model ({self.stage}.learning_rate is {self.learning_rate:g}), or float16 overflow. "
                f"Fix: lower {self.stage}.learning_rate, or use model.dtype: bfloat16 or float32. With "
                "compute.checkpoint_every_steps set, the last good checkpoint is kept and a rerun resumes from it."
            )
