"""What every training method's section shares, and the registry of methods.

A method is declared once, in its own module (rlhf_recipes/stages/<name>.py): its section (a Method subclass
tagged `method: Literal["<name>"]`), its stage (the function <name>, decorated with @stage) and the TRL trainer
the stage builds (TRAINER). `register_methods` takes the modules, finds both, and from then on the recipe has a
`<name>:` section, `variants:` accept `method: <name>`, and every part of the tool that lists methods (the
pipeline, validation, the memory estimate, the report) finds it. rlhf_recipes/stages/methods.py registers the
methods this tool ships; config/ itself imports none of them.
"""

import importlib
import inspect
import typing
from types import ModuleType
from typing import Annotated, ClassVar

from pydantic import Field

from .base import PositiveFloat, PositiveInt, Section

NonNegativeFloat = Annotated[float, Field(ge=0)]


class Method(Section):
    """What every training method's section shares."""

    stage: ClassVar[str]  # its `method:` tag: the name of its section, of its module and of its stage function
    stage_function: ClassVar[typing.Callable]  # the @stage function that trains it (set by register_methods)
    TITLE: ClassVar[str]  # how people write its name
    SECTION: ClassVar[str]  # what the recipe's docs say of its section, e.g. "DPO on the labeled pairs; omit to skip."
    TRAINER: ClassVar[str]  # the TRL class it builds, "module:Class"
    INSTALL: ClassVar[str] = "trl>=1.10,<1.17"  # what to pip install for TRAINER: the TRL releases tested with it
    CURVE_KEY: ClassVar[str] = "eval_every_steps"  # the key that turns the held-out curve on
    BATCH_KEYS: ClassVar[tuple[str, ...]] = ("batch_size",)  # batches that several processes share equally
    # Of "preferences" (the labeled pairs) and "reward_model" (the learned reward): the stage function's parameters
    # of those names, read by register_methods.
    READS: ClassVar[frozenset[str]] = frozenset()
    REFERENCE: ClassVar[bool] = True  # holds the initial policy as a frozen reference while training
    IMPLICIT_REWARD: ClassVar[bool] = False  # beta * log(pi / pi_ref) is a reward model too (DPO-style methods)
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = ()  # what TRL logs that the report plots: (key, title)
    VALUE_MODEL: ClassVar[bool] = False  # trains a value model beside the policy (PPO)
    # The setting that counts the distinct train prompts one step takes, and what the step does with them; None
    # when a step takes pairs, not prompts. More than the run's train prompts leave TRL no whole step to take.
    STEP_PROMPTS: ClassVar[tuple[str, str] | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        tag = cls.model_fields.get("method")
        if tag is not None and typing.get_origin(tag.annotation) is typing.Literal:
            (cls.stage,) = typing.get_args(tag.annotation)

    def check_installed(self) -> None:
        """Raise ValueError (what is missing, and the fix) when the installed packages lack something these settings
        use beyond TRAINER (which the preflight step checks for every method). Called by the preflight step only."""

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

    @classmethod
    def install_fix(cls) -> str:
        """What to do when the installed TRL lacks TRAINER."""
        return f"pip install '{cls.INSTALL}'"


class OfflineMethod(Method):
    """Settings shared by the methods that learn from the labeled pairs alone (DPO, KTO, SimPO, ORPO)."""

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


# The registered methods by name, in the order a recipe's policies are listed.
_REGISTERED: dict[str, type[Method]] = {}


def register_methods(*modules: str) -> tuple[type[Method], ...]:
    """Register the method each of `modules` declares (a module's name, importable): the Method subclass defined
    in it, and its stage, the function of the method's name there. Registering a module again changes nothing.
    All registered methods, in order."""
    for name in modules:
        module = importlib.import_module(name)
        section = declared_method(module)
        _REGISTERED.setdefault(section.stage, section)
    return registered_methods()


def declared_method(module: ModuleType) -> type[Method]:
    """The one method `module` declares, with its stage function and what that reads."""
    sections = [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Method) and value.__module__ == module.__name__
        and "stage" in vars(value)
    ]  # fmt: skip
    if len(sections) != 1:
        raise TypeError(
            f"{module.__name__} declares {len(sections)} methods; a method module declares one: a Method subclass "
            'with `method: Literal["<name>"]`'
        )
    (section,) = sections
    function = getattr(module, section.stage, None)
    if not callable(function) or not hasattr(function, "version"):
        raise TypeError(f"{module.__name__}: no @stage function {section.stage}, the stage that trains {section.TITLE}")
    section.stage_function = staticmethod(function)  # the function itself, from the class or a section
    section.READS = frozenset(inspect.signature(function).parameters) & {"preferences", "reward_model"}
    return section


def registered_methods() -> tuple[type[Method], ...]:
    """Every registered method's section class, in order; a RuntimeError when none is (nothing imported
    rlhf_recipes.stages.methods, which registers this tool's methods)."""
    if not _REGISTERED:
        raise RuntimeError("no training method is registered: import rlhf_recipes.stages.methods first")
    return tuple(_REGISTERED.values())
