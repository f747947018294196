"""The recipe schema: one strict pydantic tree, the single place every setting is documented.

Every section rejects unknown keys. Relative paths are resolved from the current
working directory. `recipe_loader.load_recipe` reads YAML, applies dotted overrides and
turns validation errors into messages that name the YAML path, the value and the fix.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(
            f"file {str(path)!r} not found (relative paths start at {Path.cwd()}). Fix: correct the path"
        )
    return path.resolve()


def _existing_path(path: Path) -> Path:
    if not path.exists():
        raise ValueError(f"{str(path)!r} not found (relative paths start at {Path.cwd()}). Fix: correct the path")
    return path.resolve()


# YAML gives strings; paths are the one place a string is converted, and then checked.
ExistingFile = Annotated[Path, Field(strict=False), AfterValidator(_existing_file)]
ExistingPath = Annotated[Path, Field(strict=False), AfterValidator(_existing_path)]
PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]


class TinyModel(Section):
    """A tiny Llama built locally and deterministically: for tests and the smoke recipe."""

    corpus: ExistingFile = Field(
        description="Text the byte-level BPE tokenizer is trained on: .txt (one text a line) or .jsonl "
        "(fields prompt+completion, or text)."
    )
    vocab_size: Annotated[int, Field(ge=300)] = Field(1024, description="Upper bound on the tokenizer's vocabulary.")
    hidden_size: PositiveInt = Field(64, description="Width of the residual stream.")
    intermediate_size: PositiveInt = Field(256, description="Width of each MLP.")
    num_layers: PositiveInt = Field(2, description="Number of transformer blocks.")
    num_heads: PositiveInt = Field(4, description="Attention heads per block; must divide hidden_size.")
    max_position_embeddings: PositiveInt = Field(256, description="Longest sequence in tokens.")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size}). Fix: change one of them"
            )
        return self


class Model(Section):
    """The initial policy. Give exactly one of name_or_path and tiny."""

    name_or_path: str | None = Field(None, description="Hugging Face model id or local directory of a causal LM.")
    tiny: TinyModel | None = Field(None, description="Build a tiny model locally instead of loading one.")
    trust_remote_code: bool = Field(False, description="Run Python code shipped with a hub model. Off unless set.")

    @model_validator(mode="after")
    def _exactly_one_source(self):
        if (self.name_or_path is None) == (self.tiny is None):
            raise ValueError("give exactly one of name_or_path and tiny. Fix: keep one, delete the other")
        return self


class Prompts(Section):
    """Where prompts come from and how they are split. Give exactly one of path and hub_dataset."""

    path: ExistingPath | None = Field(
        None,
        description="A .txt file (one prompt a line), a .jsonl file (field `field`), or a directory written by "
        "datasets' save_to_disk.",
    )
    hub_dataset: str | None = Field(None, description="A dataset name for datasets.load_dataset (needs network).")
    split: str = Field("train", description="Split of hub_dataset or of a saved DatasetDict.")
    field: str = Field("prompt", description="Column or jsonl field holding the prompt text.")
    heldout_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.2, description="Fraction of distinct prompts held out for evaluation; never trained on."
    )
    max_prompts: PositiveInt | None = Field(None, description="Use only this many distinct prompts (after shuffling).")

    @model_validator(mode="after")
    def _exactly_one_source(self):
        if (self.path is None) == (self.hub_dataset is None):
            raise ValueError("give exactly one of path and hub_dataset. Fix: keep one, delete the other")
        return self


class Sft(Section):
    """Optional warm start on demonstrations (InstructGPT step 1) with TRL's SFTTrainer."""

    demonstrations: ExistingFile = Field(description="A .jsonl file with prompt and completion fields.")
    epochs: PositiveFloat = Field(1.0, description="Passes over the demonstrations.")
    learning_rate: PositiveFloat = Field(2e-5, description="Peak AdamW learning rate (cosine decay).")
    batch_size: PositiveInt = Field(8, description="Demonstrations per optimizer step.")
    max_length_tokens: PositiveInt = Field(256, description="Longer demonstrations are truncated.")


class Sampling(Section):
    """How responses are sampled from the initial policy for labeling."""

    responses_per_prompt: Annotated[int, Field(ge=2)] = Field(4, description="K responses per prompt (K >= 2).")
    max_new_tokens: PositiveInt = Field(48, description="Longest response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Softmax temperature.")
    top_p: Annotated[float, Field(gt=0, le=1)] = Field(1.0, description="Nucleus sampling mass; 1.0 is off.")
    top_k: Annotated[int, Field(ge=0)] = Field(0, description="Sample from the k likeliest tokens; 0 is off.")
    batch_size: PositiveInt = Field(32, description="Sequences generated at once.")


class SentimentLabeler(Section):
    """Prefers the more positive response: VADER compound score in [-1, 1]."""

    kind: Literal["sentiment"]


class LengthLabeler(Section):
    """Prefers responses near a target length: score = -|words - target_words|."""

    kind: Literal["length"]
    target_words: PositiveInt = Field(description="The preferred response length in words.")


class KeywordsLabeler(Section):
    """Prefers responses that use given words: score = number of occurrences (whole words, any case)."""

    kind: Literal["keywords"]
    keywords: Annotated[list[str], Field(min_length=1)] = Field(description="Words that earn one point each time.")


Labeler = Annotated[SentimentLabeler | LengthLabeler | KeywordsLabeler, Field(discriminator="kind")]


class Preferences(Section):
    """How labeled responses become preference pairs, and the simulated labeler's noise."""

    pairing: Literal["best_vs_worst", "random", "all"] = Field(
        "best_vs_worst",
        description="best_vs_worst: one pair a prompt; random: disjoint random pairs; all: every pair.",
    )
    tie_margin: Annotated[float, Field(ge=0)] = Field(
        0.0, description="Pairs whose scores differ by no more than this are ties and dropped."
    )
    label_flip_prob: Annotated[float, Field(ge=0, lt=0.5)] = Field(
        0.0, description="Probability that a label is flipped after it is drawn."
    )
    bradley_terry_temperature: PositiveFloat | None = Field(
        None,
        description="If set, a is preferred to b with probability sigmoid((s_a - s_b) / temperature); "
        "if unset, the higher score always wins.",
    )


class Reward(Section):
    """The Bradley-Terry reward model, trained with TRL's RewardTrainer from the (SFT) policy's weights."""

    epochs: PositiveFloat = Field(1.0, description="Passes over the training pairs.")
    learning_rate: PositiveFloat = Field(1e-5, description="Peak AdamW learning rate (cosine decay).")
    batch_size: PositiveInt = Field(8, description="Pairs per optimizer step.")
    max_length_tokens: PositiveInt = Field(512, description="Pairs with a longer side are skipped in training.")


class Ppo(Section):
    """PPO against the learned reward with a per-token KL penalty (trl.experimental.ppo.PPOTrainer)."""

    learning_rate: PositiveFloat = Field(3e-6, description="AdamW learning rate (linear decay).")
    total_episodes: PositiveInt | None = Field(
        None, description="Prompts rolled out in all; default: one pass over the train prompts."
    )
    rollouts_per_update: PositiveInt = Field(64, description="Responses generated and scored per PPO update.")
    micro_batch_size: PositiveInt = Field(8, description="Responses per forward/backward pass.")
    ppo_epochs: PositiveInt = Field(4, description="Optimisation passes over each batch of rollouts.")
    kl_coef: Annotated[float, Field(ge=0)] = Field(0.05, description="beta of the per-token penalty -beta*KL.")
    kl_estimator: Literal["k1", "k3"] = Field("k1", description="Per-token KL estimator in the penalty.")
    cliprange: PositiveFloat = Field(0.2, description="epsilon of the clipped policy ratio.")
    vf_coef: PositiveFloat = Field(0.1, description="Weight of the value loss.")
    cliprange_value: PositiveFloat = Field(0.2, description="Clip range of the value prediction.")
    gamma: Annotated[float, Field(gt=0, le=1)] = Field(1.0, description="Discount factor.")
    lam: Annotated[float, Field(ge=0, le=1)] = Field(0.95, description="lambda of GAE.")
    whiten_rewards: bool = Field(False, description="Normalise rewards per batch (needs >= 8 rollouts a batch).")
    max_new_tokens: PositiveInt = Field(48, description="Longest rollout response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Rollout sampling temperature.")
    missing_eos_penalty: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Subtracted from the score of a response that never ends."
    )

    @model_validator(mode="after")
    def _batches_divide(self):
        if self.rollouts_per_update % self.micro_batch_size:
            raise ValueError(
                f"rollouts_per_update ({self.rollouts_per_update}) must be a multiple of "
                f"micro_batch_size ({self.micro_batch_size}). Fix: change one of them"
            )
        if self.total_episodes is not None and self.total_episodes < self.rollouts_per_update:
            raise ValueError(
                f"total_episodes ({self.total_episodes}) is less than one update of "
                f"rollouts_per_update ({self.rollouts_per_update}). Fix: raise total_episodes"
            )
        return self


class Dpo(Section):
    """Direct preference optimisation on the same train pairs (TRL's DPOTrainer)."""

    learning_rate: PositiveFloat = Field(1e-6, description="Peak AdamW learning rate (cosine decay).")
    epochs: PositiveFloat = Field(1.0, description="Passes over the training pairs.")
    batch_size: PositiveInt = Field(8, description="Pairs per optimizer step.")
    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    loss_type: Literal["sigmoid", "hinge", "ipo"] = Field(
        "sigmoid", description="sigmoid: the DPO paper's loss; hinge: SLiC; ipo: IPO."
    )
    max_length_tokens: PositiveInt = Field(512, description="Prompt+response longer than this is truncated.")


class Evaluation(Section):
    """Evaluation of every policy on the held-out prompts."""

    responses_per_prompt: PositiveInt = Field(4, description="Responses sampled per held-out prompt per policy.")
    max_new_tokens: PositiveInt = Field(48, description="Longest response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Sampling temperature; KL is measured at it too.")
    batch_size: PositiveInt = Field(32, description="Sequences generated or scored at once.")
    examples_in_report: Annotated[int, Field(ge=0)] = Field(3, description="Sample generations per policy shown.")


class Compute(Section):
    """Hardware settings shared by all training stages. TRL defaults both flags on; we default them off."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: a GPU if one is visible, else CPU.")
    bf16: bool = Field(False, description="bfloat16 autocast in training.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")


class Recipe(Section):
    """One end-to-end run: prompts, optional SFT, sampling, labeling, reward model, PPO and/or DPO, evaluation."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = Field(
        description="Run name; the default run directory is runs/<name>."
    )
    seed: Annotated[int, Field(ge=0)] = Field(0, description="Seed of every random choice in the run.")
    model: Model = Field(description="The initial policy: name_or_path or tiny.")
    prompts: Prompts = Field(description="Prompt source and the train/held-out split.")
    sft: Sft | None = Field(None, description="Optional SFT warm start; omit to start from the model as is.")
    sampling: Sampling = Field(Sampling(), description="Sampling of responses to label.")
    labeler: Labeler = Field(description="The proxy labeler: kind sentiment, length or keywords.")
    preferences: Preferences = Field(Preferences(), description="Pairing and label noise.")
    reward: Reward = Field(Reward(), description="Reward-model training.")
    ppo: Ppo | None = Field(None, description="PPO training; omit to skip PPO.")
    dpo: Dpo | None = Field(None, description="DPO training; omit to skip DPO.")
    evaluation: Evaluation = Field(Evaluation(), description="Held-out evaluation.")
    compute: Compute = Field(Compute(), description="Device and precision.")

    @model_validator(mode="after")
    def _trains_a_policy(self):
        if self.ppo is None and self.dpo is None:
            raise ValueError("the recipe trains no policy. Fix: add a ppo: section, a dpo: section, or both")
        return self
