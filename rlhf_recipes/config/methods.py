"""Training methods: one section each, trained by the stage of the same name (rlhf_recipes/stages/<name>.py)."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from .base import PositiveFloat, PositiveInt, Section


class Method(Section):
    """What every training method's section shares. `stage`: the name of its section, of its module in
    rlhf_recipes/stages/ and of the stage function there; the pipeline finds the stage by it."""

    stage: ClassVar[str]
    CURVE_KEY: ClassVar[str] = "eval_every_steps"  # the key that turns the held-out curve on
    BATCH_KEYS: ClassVar[tuple[str, ...]] = ("batch_size",)  # batches that several processes share

    def curve_every(self) -> int | None:
        """Optimizer steps (PPO: updates) between points of the held-out curve; None for no curve."""
        return getattr(self, self.CURVE_KEY)

    def describe(self) -> str:
        """One line for `rlhf validate`'s plan."""
        raise NotImplementedError


class Ppo(Method):
    """PPO against the learned reward with a per-token KL penalty (trl.experimental.ppo.PPOTrainer)."""

    stage: ClassVar[str] = "ppo"
    CURVE_KEY: ClassVar[str] = "eval_every_updates"
    BATCH_KEYS: ClassVar[tuple[str, ...]] = ("rollouts_per_update", "mini_batch_size")

    learning_rate: PositiveFloat = Field(3e-6, description="AdamW learning rate (linear decay).")
    total_episodes: PositiveInt | None = Field(
        None, description="Prompts rolled out in all; default: one pass over the train prompts."
    )
    rollouts_per_update: PositiveInt = Field(64, description="Responses generated and scored per PPO update.")
    mini_batch_size: PositiveInt = Field(
        8, description="Responses per optimizer step; rollouts_per_update / mini_batch_size steps per PPO epoch."
    )
    ppo_epochs: PositiveInt = Field(4, description="Optimisation passes over each batch of rollouts.")
    kl_coef: Annotated[float, Field(ge=0)] = Field(0.05, description="beta of the per-token penalty -beta*KL.")
    kl_estimator: Literal["k1", "k3"] = Field("k1", description="Per-token KL estimator in the penalty.")
    cliprange: PositiveFloat = Field(0.2, description="epsilon of the clipped policy ratio.")
    vf_coef: PositiveFloat = Field(0.1, description="Weight of the value loss.")
    cliprange_value: PositiveFloat = Field(0.2, description="Clip range of the value prediction.")
    gamma: Annotated[float, Field(gt=0, le=1)] = Field(1.0, description="Discount factor.")
    lam: Annotated[float, Field(ge=0, le=1)] = Field(0.95, description="lambda of GAE.")
    whiten_rewards: bool = Field(False, description="Normalise rewards per batch (needs mini_batch_size >= 8).")
    max_new_tokens: PositiveInt = Field(48, description="Longest rollout response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Rollout sampling temperature.")
    missing_eos_penalty: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Subtracted from the score of a response that never ends."
    )
    eval_every_updates: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many PPO updates (training curve); off if unset."
    )

    def describe(self) -> str:
        return f"kl_coef {self.kl_coef:g}, {self.total_episodes or 'one pass of'} episodes"

    @model_validator(mode="after")
    def _batches_divide(self):
        if self.rollouts_per_update % self.mini_batch_size:
            raise ValueError(
                f"rollouts_per_update ({self.rollouts_per_update}) must be a multiple of "
                f"mini_batch_size ({self.mini_batch_size}). Fix: change one of them"
            )
        if self.whiten_rewards and self.mini_batch_size < 8:
            raise ValueError(
                f"whiten_rewards needs mini_batch_size >= 8 to estimate a variance, got {self.mini_batch_size}. "
                "Fix: raise mini_batch_size or set whiten_rewards: false"
            )
        if self.total_episodes is not None and self.total_episodes < self.rollouts_per_update:
            raise ValueError(
                f"total_episodes ({self.total_episodes}) is less than one update of "
                f"rollouts_per_update ({self.rollouts_per_update}). Fix: raise total_episodes"
            )
        return self


class Dpo(Method):
    """Direct preference optimisation on the same train pairs (TRL's DPOTrainer)."""

    stage: ClassVar[str] = "dpo"

    learning_rate: PositiveFloat = Field(1e-6, description="Peak AdamW learning rate (cosine decay).")
    epochs: PositiveFloat = Field(1.0, description="Passes over the training pairs.")
    batch_size: PositiveInt = Field(8, description="Pairs per optimizer step.")
    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    loss_type: Literal["sigmoid", "hinge", "ipo"] = Field(
        "sigmoid", description="sigmoid: the DPO paper's loss; hinge: SLiC; ipo: IPO."
    )
    max_length_tokens: PositiveInt = Field(512, description="Prompt+response longer than this is truncated.")
    eval_every_steps: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many optimizer steps (training curve); off if unset."
    )

    def describe(self) -> str:
        return f"beta {self.beta:g}, loss {self.loss_type}, {self.epochs:g} epoch(s)"
