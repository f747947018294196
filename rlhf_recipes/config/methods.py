"""Training methods: one section each, trained by the stage of the same name (rlhf_recipes/stages/<name>.py).

A recipe trains a method by its section (`dpo:`), or several variants of methods under `variants:`,
each named by the user and tagged with `method:`. What every method needs (the preference pairs, the
learned reward model, a reference policy) is stated once per class, for the memory estimate, the
report's costs and the docs.
"""

import ast
import difflib
import functools
import importlib.util
import os
import typing
from importlib import metadata
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .base import PositiveFloat, PositiveInt, Section

Probability = Annotated[float, Field(ge=0, lt=0.5)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class Method(Section):
    """What every training method's section shares."""

    stage: ClassVar[str]  # the name of its section, of its module in rlhf_recipes/stages/ and of the function there
    TITLE: ClassVar[str]  # how people write its name
    TRAINER: ClassVar[str]  # the TRL class it builds, "module:Class"
    INSTALL: ClassVar[str] = "trl>=1.10,<1.17"  # what to pip install for TRAINER: the TRL releases tested with it
    CURVE_KEY: ClassVar[str] = "eval_every_steps"  # the key that turns the held-out curve on
    BATCH_KEYS: ClassVar[tuple[str, ...]] = ("batch_size",)  # batches that several processes share equally
    READS: ClassVar[frozenset[str]]  # of "preferences" (the labeled pairs) and "reward_model" (the learned reward)
    REFERENCE: ClassVar[bool] = True  # holds the initial policy as a frozen reference while training
    IMPLICIT_REWARD: ClassVar[bool] = False  # beta * log(pi / pi_ref) is a reward model too (DPO-style methods)
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = ()  # what TRL logs that the report plots: (key, title)
    VALUE_MODEL: ClassVar[bool] = False  # trains a value model beside the policy (PPO)
    # The setting that counts the distinct train prompts one step takes, and what the step does with them; None
    # when a step takes pairs, not prompts. More than the run's train prompts leave TRL no whole step to take.
    STEP_PROMPTS: ClassVar[tuple[str, str] | None] = None

    def curve_every(self) -> int | None:
        """Optimizer steps (PPO: updates) between points of the held-out curve; None for no curve."""
        return getattr(self, self.CURVE_KEY)

    def describe(self) -> str:
        """One line for `rlhf validate`'s plan: the settings that set the method's strength."""
        raise NotImplementedError(f"{type(self).__name__}.describe")

    def memory_batch(self, prompt_tokens: int) -> tuple[int, int]:
        """(sequences, tokens each) of one optimizer step's forward and backward pass, for the memory estimate."""
        raise NotImplementedError(f"{type(self).__name__}.memory_batch")

    def too_few_train_prompts(self, key: str, train_prompts: int) -> str | None:
        """The problem when one step takes more distinct train prompts than the run has (`key`: where the user set
        the STEP_PROMPTS setting), else None. TRL's PPO then loops forever, GRPO and RLOO take no step (their
        sampler drops an incomplete batch), online DPO and rsft take one short step and report it as training."""
        if self.STEP_PROMPTS is None:
            return None
        setting, step = self.STEP_PROMPTS
        wanted = getattr(self, setting)
        if wanted <= train_prompts:
            return None
        return (
            f"{key}={wanted}: {step} that many distinct train prompts, and this run has {train_prompts}. "
            f"Fix: lower {key} to at most {train_prompts}, or use more prompts"
        )

    @model_validator(mode="after")
    def _trainer_is_installed(self):
        module, _, name = self.TRAINER.partition(":")
        if not module_provides(module, name):
            raise ValueError(
                f"the {self.TITLE} method needs {module}.{name}, which the installed TRL "
                f"({metadata.version('trl')}) does not have. Fix: {self.install_fix()}"
            )
        return self

    @classmethod
    def install_fix(cls) -> str:
        """What to do when the installed TRL lacks TRAINER."""
        return f"pip install '{cls.INSTALL}'"


@functools.cache
def installed_source(module: str) -> str | None:
    """The source of the installed `module`'s file (a package's __init__.py), read without importing it:
    importing a TRL trainer takes seconds (torch, transformers), and validating a recipe must not. None if
    it is not installed."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # trl.experimental warns on import otherwise
    try:
        spec = importlib.util.find_spec(module)  # imports the parent packages only
    except ImportError:
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).read_text(encoding="utf-8")


def module_mentions(module: str, word: str) -> bool:
    """Whether the installed `module`'s source names `word` in quotes (a value a TRL config accepts)."""
    source = installed_source(module)
    return source is not None and (f"'{word}'" in source or f'"{word}"' in source)


@functools.cache
def module_provides(module: str, name: str) -> bool:
    """Whether the installed `module` provides `name`, read from its __init__.py: a name it imports, or a
    string of a lazy module's import structure, as trl's."""
    source = installed_source(module)
    if source is None:
        return False
    tree = ast.parse(source)
    names = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             for alias in node.names}  # fmt: skip
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return name in names | strings


class OfflineMethod(Method):
    """Settings shared by the methods that learn from the labeled pairs alone (DPO, KTO, SimPO, ORPO)."""

    READS: ClassVar[frozenset[str]] = frozenset({"preferences"})

    learning_rate: PositiveFloat = Field(1e-6, description="Peak AdamW learning rate (cosine decay).")
    epochs: PositiveFloat = Field(1.0, description="Passes over the training pairs.")
    batch_size: PositiveInt = Field(8, description="Pairs per optimizer step.")
    max_length_tokens: PositiveInt = Field(512, description="Prompt+response longer than this is truncated.")
    eval_every_steps: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many optimizer steps (training curve); off if unset."
    )

    def memory_batch(self, prompt_tokens: int) -> tuple[int, int]:
        return 2 * self.batch_size, self.max_length_tokens  # a chosen and a rejected (or a KL) sequence each


class OnlineMethod(Method):
    """Settings shared by the methods that sample from the policy as it trains and score the samples with
    the learned reward model (RLOO, GRPO, online DPO)."""

    READS: ClassVar[frozenset[str]] = frozenset({"reward_model"})
    BATCH_KEYS: ClassVar[tuple[str, ...]] = ("prompts_per_step",)
    STEP_PROMPTS: ClassVar[tuple[str, str]] = ("prompts_per_step", "each optimizer step answers")

    learning_rate: PositiveFloat = Field(1e-6, description="Peak AdamW learning rate (linear decay).")
    epochs: PositiveFloat = Field(1.0, description="Passes over the train prompts.")
    prompts_per_step: PositiveInt = Field(8, description="Train prompts answered per optimizer step.")
    max_new_tokens: PositiveInt = Field(48, description="Longest sampled response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Sampling temperature of the training responses.")
    missing_eos_penalty: NonNegativeFloat | None = Field(
        1.0, description="Subtracted from the learned reward of a response that never ends; null for none."
    )
    eval_every_steps: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many optimizer steps (training curve); off if unset."
    )

    def responses_per_prompt(self) -> int:
        return self.generations_per_prompt

    def memory_batch(self, prompt_tokens: int) -> tuple[int, int]:
        return self.prompts_per_step * self.responses_per_prompt(), prompt_tokens + self.max_new_tokens


class Ppo(Method):
    """PPO against the learned reward with a per-token KL penalty (trl.experimental.ppo.PPOTrainer).

    Defaults follow Huang et al. 2024 ("The N+ implementation details of RLHF with PPO"): reward and
    advantage whitening, a penalty for responses that never end, EOS as the stop token, the value model
    started from the reward model, Adam epsilon 1e-5, 64 rollouts an update.
    """

    stage: ClassVar[str] = "ppo"
    method: Literal["ppo"] = Field("ppo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "PPO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("objective/scores", "learned reward of rollouts"),
        ("objective/kl", "KL of rollouts (nats)"),
        ("loss/value_avg", "value loss"),
        ("policy/clipfrac_avg", "clipped fraction"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.ppo:PPOTrainer"
    INSTALL: ClassVar[str] = "rlhf-recipes[ppo]"  # the extra that narrows TRL to the releases with PPO
    CURVE_KEY: ClassVar[str] = "eval_every_updates"
    BATCH_KEYS: ClassVar[tuple[str, ...]] = ("rollouts_per_update", "mini_batch_size")
    READS: ClassVar[frozenset[str]] = frozenset({"reward_model"})
    VALUE_MODEL: ClassVar[bool] = True
    STEP_PROMPTS: ClassVar[tuple[str, str]] = ("rollouts_per_update", "each update answers")

    learning_rate: PositiveFloat = Field(3e-6, description="AdamW learning rate (linear decay).")
    total_episodes: PositiveInt | None = Field(
        None, description="Prompts rolled out in all; default: one pass over the train prompts."
    )
    rollouts_per_update: PositiveInt = Field(64, description="Responses generated and scored per PPO update.")
    mini_batch_size: PositiveInt = Field(
        8, description="Responses per optimizer step; rollouts_per_update / mini_batch_size steps per PPO epoch."
    )
    ppo_epochs: PositiveInt = Field(4, description="Optimisation passes over each batch of rollouts.")
    kl_coef: NonNegativeFloat = Field(0.05, description="beta of the per-token penalty -beta*KL.")
    kl_estimator: Literal["k1", "k3"] = Field("k1", description="Per-token KL estimator in the penalty.")
    cliprange: PositiveFloat = Field(0.2, description="epsilon of the clipped policy ratio.")
    vf_coef: PositiveFloat = Field(0.1, description="Weight of the value loss.")
    cliprange_value: PositiveFloat = Field(0.2, description="Clip range of the value prediction.")
    gamma: Annotated[float, Field(gt=0, le=1)] = Field(1.0, description="Discount factor.")
    lam: Annotated[float, Field(ge=0, le=1)] = Field(0.95, description="lambda of GAE.")
    whiten_rewards: bool = Field(True, description="Normalise rewards per batch (needs mini_batch_size >= 8).")
    max_new_tokens: PositiveInt = Field(48, description="Longest rollout response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Rollout sampling temperature (and of the KL penalty).")
    missing_eos_penalty: NonNegativeFloat | None = Field(
        1.0, description="Subtracted from the score of a response that never ends; null for none."
    )
    eval_every_updates: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many PPO updates (training curve); off if unset."
    )

    @classmethod
    def install_fix(cls) -> str:
        return (
            f"TRL 1.13 deleted PPO: pip install '{cls.INSTALL}' (the extra narrows TRL to 1.10-1.12), "
            "or leave out the ppo section and its variants"
        )

    def describe(self) -> str:
        return f"kl_coef {self.kl_coef:g}, {self.total_episodes or 'one pass of'} episodes"

    def memory_batch(self, prompt_tokens: int) -> tuple[int, int]:
        return self.mini_batch_size, prompt_tokens + self.max_new_tokens

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


DPO_LOSSES = Literal[
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
    "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
]  # fmt: skip
SMOOTHED_LOSSES = {"robust", "exo_pair", "aot", "aot_unpaired"}  # TRL 1.12's losses that read label_smoothing
# Losses people name that are something else here.
LOSSES_ELSEWHERE = {
    "rpo": "RPO is loss_type: [sigmoid, sft], DPO's loss plus the SFT loss on the chosen response",
    "kto": "KTO is a method of its own: a kto: section",
    "simpo": "SimPO is a method of its own: a simpo: section",
    "orpo": "ORPO is a method of its own: an orpo: section",
}


def unknown_dpo_loss(name) -> str:
    """Why `name` is no loss_type of DPO, and the fix."""
    allowed = typing.get_args(DPO_LOSSES)
    close = difflib.get_close_matches(str(name), allowed, n=1)
    hint = LOSSES_ELSEWHERE.get(str(name)) or (f"did you mean {close[0]}?" if close else "")
    return (
        f"{name!r} is not a loss of TRL 1.12's DPOTrainer{f' ({hint})' if hint else ''}. Fix: one of "
        f"{', '.join(allowed)}, or a list of them summed with loss_weights"
    )


class Dpo(OfflineMethod):
    """Direct preference optimisation on the same train pairs (TRL's DPOTrainer), with any of TRL 1.12's
    losses or a weighted sum of several."""

    stage: ClassVar[str] = "dpo"
    method: Literal["dpo"] = Field("dpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "DPO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("rewards/margins", "implicit reward margin"),
        ("rewards/accuracies", "implicit reward accuracy"),
    )
    TRAINER: ClassVar[str] = "trl:DPOTrainer"
    IMPLICIT_REWARD: ClassVar[bool] = True

    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    loss_type: DPO_LOSSES | Annotated[list[DPO_LOSSES], Field(min_length=1)] = Field(
        "sigmoid",
        description="sigmoid: the DPO paper's; hinge: SLiC; ipo: IPO; robust: robust DPO for noisy labels; any TRL "
        "1.12 loss (docs/method.md), or a list of them summed with loss_weights ([sigmoid, sft]: RPO).",
    )
    loss_weights: Annotated[list[PositiveFloat], Field(min_length=1)] | None = Field(
        None, description="Weight of each loss of a loss_type list; default 1 each."
    )
    label_smoothing: Probability = Field(
        0.0, description="epsilon, the assumed label-flip rate, for the robust, exo_pair and aot losses."
    )

    def losses(self) -> list[str]:
        return self.loss_type if isinstance(self.loss_type, list) else [self.loss_type]

    @field_validator("loss_type", mode="before")
    @classmethod
    def _known_losses(cls, value):
        # one message for a loss or a list of losses (the union would give one for each member)
        names = value if isinstance(value, list) else [value]
        if not names:
            raise ValueError("an empty list names no loss. Fix: give one loss, e.g. sigmoid, or a list of them")
        for name in names:
            if name not in typing.get_args(DPO_LOSSES):
                raise ValueError(unknown_dpo_loss(name))
        return value

    def describe(self) -> str:
        return f"beta {self.beta:g}, loss {'+'.join(self.losses())}, {self.epochs:g} epoch(s)"

    @model_validator(mode="after")
    def _losses_read_their_settings(self):
        if self.loss_weights is not None and len(self.loss_weights) != len(self.losses()):
            raise ValueError(
                f"loss_weights has {len(self.loss_weights)} weight(s) for {len(self.losses())} loss(es) in "
                "loss_type. Fix: give one weight per loss"
            )
        if self.label_smoothing and not SMOOTHED_LOSSES & set(self.losses()):
            raise ValueError(
                f"label_smoothing {self.label_smoothing:g} has no effect with loss_type {self.loss_type} in TRL "
                "1.12 (its sigmoid loss ignores it). Fix: use loss_type: robust (robust DPO) for noisy labels, "
                "or remove label_smoothing"
            )
        if "exo_pair" in self.losses() and not self.label_smoothing:
            raise ValueError("loss_type exo_pair needs label_smoothing > 0. Fix: set label_smoothing, e.g. 1.0e-3")
        return self


class Kto(OfflineMethod):
    """KTO (TRL's KTOTrainer): the same labeled pairs, unpaired into desirable and undesirable responses."""

    stage: ClassVar[str] = "kto"
    method: Literal["kto"] = Field("kto", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "KTO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("kl", "KL estimate of the batch"),
        ("rewards/chosen", "implicit reward, desirable"),
    )
    TRAINER: ClassVar[str] = "trl:KTOTrainer"
    IMPLICIT_REWARD: ClassVar[bool] = True

    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    desirable_weight: PositiveFloat = Field(1.0, description="Weight of the loss on desirable (chosen) responses.")
    undesirable_weight: PositiveFloat = Field(
        1.0, description="Weight of the loss on undesirable (rejected) responses."
    )
    batch_size: Annotated[int, Field(ge=2)] = Field(
        8, description="Responses per optimizer step (>= 2: KTO's KL estimate pairs responses within a batch)."
    )

    def describe(self) -> str:
        return f"beta {self.beta:g}, {self.epochs:g} epoch(s)"


class Simpo(OfflineMethod):
    """SimPO (trl.experimental.cpo with loss_type simpo, cpo_alpha 0): a length-normalised margin loss with
    no reference model."""

    stage: ClassVar[str] = "simpo"
    method: Literal["simpo"] = Field("simpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "SimPO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("rewards/margins", "reward margin"),
        ("rewards/accuracies", "reward accuracy"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.cpo:CPOTrainer"
    REFERENCE: ClassVar[bool] = False

    beta: PositiveFloat = Field(2.0, description="beta: scale of the length-normalised log-likelihood reward.")
    gamma: NonNegativeFloat = Field(1.0, description="gamma: the target reward margin.")

    def describe(self) -> str:
        return f"beta {self.beta:g}, gamma {self.gamma:g}, {self.epochs:g} epoch(s)"


class Orpo(OfflineMethod):
    """ORPO (trl.experimental.orpo): supervised loss on the chosen response plus an odds-ratio penalty, with
    no reference model."""

    stage: ClassVar[str] = "orpo"
    method: Literal["orpo"] = Field("orpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "ORPO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("log_odds_chosen", "log odds ratio, chosen vs rejected"),
        ("nll_loss", "SFT loss on chosen"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.orpo:ORPOTrainer"
    REFERENCE: ClassVar[bool] = False

    beta: PositiveFloat = Field(0.1, description="lambda: weight of the odds-ratio term against the SFT loss.")

    def describe(self) -> str:
        return f"lambda {self.beta:g}, {self.epochs:g} epoch(s)"


class Rloo(OnlineMethod):
    """RLOO (TRL's RLOOTrainer): K responses per prompt scored by the learned reward, each baselined by the
    mean of the other K - 1; the KL to the reference is subtracted from the reward."""

    stage: ClassVar[str] = "rloo"
    method: Literal["rloo"] = Field("rloo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "RLOO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("reward", "learned reward of responses"),
        ("kl", "KL to the reference (per token)"),
        ("completions/mean_length", "response length (tokens)"),
    )
    TRAINER: ClassVar[str] = "trl:RLOOTrainer"

    beta: NonNegativeFloat = Field(0.05, description="beta of the sequence-level penalty -beta*KL in the reward.")
    generations_per_prompt: Annotated[int, Field(ge=2)] = Field(4, description="K responses per prompt (>= 2).")

    def describe(self) -> str:
        return f"beta {self.beta:g}, K {self.generations_per_prompt}, {self.epochs:g} epoch(s)"


class Grpo(OnlineMethod):
    """GRPO (TRL's GRPOTrainer): K responses per prompt, advantages normalised within each prompt's group,
    a per-token KL term in the loss."""

    stage: ClassVar[str] = "grpo"
    method: Literal["grpo"] = Field("grpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "GRPO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("reward", "learned reward of responses"),
        ("kl", "KL to the reference (per token)"),
        ("completions/mean_length", "response length (tokens)"),
    )
    TRAINER: ClassVar[str] = "trl:GRPOTrainer"

    beta: PositiveFloat = Field(
        0.04, description="beta of the per-token KL term (TRL's default 0 would load no reference and track no KL)."
    )
    generations_per_prompt: Annotated[int, Field(ge=2)] = Field(4, description="K responses per prompt (>= 2).")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = Field(
        "dapo",
        description="The policy loss: grpo (token losses averaged per sequence), dapo, dr_grpo, bnpo (other "
        "averages); cispo (clipped importance weights), sapo (a soft gate instead of clipping), luspo "
        "(sequence-level, needs importance_sampling_level sequence), vespo; the last four where the installed "
        "TRL has them.",
    )
    importance_sampling_level: Literal["token", "sequence"] = Field(
        "token",
        description="Importance ratios per token, or one per sequence (GSPO: sequence with loss_type grpo).",
        json_schema_extra={"added_later": True},
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Divide advantages by the reward's std in the group, the batch, or not at all."
    )

    @model_validator(mode="after")
    def _loss_fits_importance_level(self):
        level, loss = self.importance_sampling_level, self.loss_type
        if loss == "luspo" and level != "sequence":
            raise ValueError("loss_type luspo is a sequence-level loss. Fix: set importance_sampling_level: sequence")
        if loss == "vespo" and level != "token":
            raise ValueError(
                "loss_type vespo computes its sequence weights itself. Fix: set importance_sampling_level: token"
            )
        if level == "sequence" and loss in ("dapo", "dr_grpo", "bnpo", "cispo"):
            raise ValueError(
                f"importance_sampling_level sequence with loss_type {loss} weights each answer by its length "
                "instead of optimizing the sequence-level objective. Fix: set loss_type: grpo (GSPO), or luspo"
            )
        if not module_mentions("trl.trainer.grpo_config", loss):
            raise ValueError(
                f"loss_type {loss}: the installed TRL ({metadata.version('trl')}) has no such GRPO loss. "
                f"Fix: pip install '{self.INSTALL}', or another loss_type"
            )
        return self

    def describe(self) -> str:
        return f"beta {self.beta:g}, K {self.generations_per_prompt}, {self.epochs:g} epoch(s)"


class OnlineDpo(OnlineMethod):
    """Online DPO (trl.experimental.online_dpo): two responses per prompt from the policy as it trains, ranked
    by the learned reward, then a DPO step on that pair."""

    stage: ClassVar[str] = "online_dpo"
    method: Literal["online_dpo"] = Field("online_dpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "online DPO"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("objective/scores", "learned reward of responses"),
        ("objective/kl", "KL to the reference"),
        ("rewards/margins", "implicit reward margin"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.online_dpo:OnlineDPOTrainer"
    IMPLICIT_REWARD: ClassVar[bool] = True

    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    loss_type: Literal["sigmoid", "ipo"] = Field("sigmoid", description="sigmoid: DPO's loss; ipo: IPO's.")

    def describe(self) -> str:
        return f"beta {self.beta:g}, loss {self.loss_type}, {self.epochs:g} epoch(s)"

    def responses_per_prompt(self) -> int:
        return 2  # online DPO compares two responses a prompt (fixed in TRL 1.12)


class Rsft(Method):
    """Rejection-sampling fine-tuning (best-of-N distillation, expert iteration): sample N responses per train
    prompt, keep the one the learned reward scores highest, fine-tune on those with TRL's SFTTrainer; with
    rounds > 1, sample again from the tuned policy each round."""

    stage: ClassVar[str] = "rsft"
    method: Literal["rsft"] = Field("rsft", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "rejection-sampling fine-tuning"
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "SFT loss on the selected answers"),
        ("mean_token_accuracy", "token accuracy"),
    )
    TRAINER: ClassVar[str] = "trl:SFTTrainer"
    READS: ClassVar[frozenset[str]] = frozenset({"reward_model"})
    STEP_PROMPTS: ClassVar[tuple[str, str]] = ("batch_size", "each optimizer step trains on the best answers to")

    samples_per_prompt: Annotated[int, Field(ge=2)] = Field(8, description="N: responses sampled per train prompt.")
    rounds: PositiveInt = Field(1, description="Sample, select, fine-tune this many times (expert iteration).")
    learning_rate: PositiveFloat = Field(1e-5, description="Peak AdamW learning rate of each round (cosine decay).")
    epochs: PositiveFloat = Field(1.0, description="Passes over the selected responses in each round.")
    batch_size: PositiveInt = Field(8, description="Selected responses per optimizer step.")
    generation_batch_size: PositiveInt = Field(
        64, description="Responses sampled, or scored by the reward model, at once (not a training setting)."
    )
    max_new_tokens: PositiveInt = Field(48, description="Longest sampled response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Sampling temperature.")
    max_length_tokens: PositiveInt = Field(512, description="Prompt+response longer than this is truncated.")
    eval_every_steps: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many optimizer steps (training curve); off if unset."
    )

    def describe(self) -> str:
        return f"best of {self.samples_per_prompt}, {self.rounds} round(s)"

    def memory_batch(self, prompt_tokens: int) -> tuple[int, int]:
        return self.batch_size, self.max_length_tokens


METHODS = (Ppo, Dpo, Kto, Simpo, Orpo, Rloo, Grpo, OnlineDpo, Rsft)  # in the order a recipe's policies are listed
MethodSection = Annotated[
    Ppo | Dpo | Kto | Simpo | Orpo | Rloo | Grpo | OnlineDpo | Rsft, Field(discriminator="method")
]
