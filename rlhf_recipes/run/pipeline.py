"""The whole method on one screen: `plan` names every stage of a recipe, in order, with the exact
arguments it is called with; `run_recipe` runs (or reuses) them and writes the report."""

import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from ..config.methods import Method
from ..config.schema import MEMBER_PREFIX, Recipe
from ..console import make_console
from ..errors import RecipeError
from ..generation.formatting import prompt_ids
from ..generation.sampling import check_context as check
from ..labeling import fingerprints  # noqa: F401  (registers what labelers add to the stages' fingerprints)
from ..labeling.model_labelers import check_hub_labelers
from ..models.builtin import builtin_gguf_path
from ..models.loading import Loading, Tuning, device_for, load_tokenizer, resolved_compute
from ..reporting.report import write_report
from ..runtime import distributed
from ..runtime.directory import RunDirectory
from ..runtime.prompt_files import read_prompts
from ..runtime.stage import Step
from ..runtime.tracking import log_final_metrics
from ..stages.evaluation import evaluation, samples_serve_best_of_n
from ..stages.model import model
from ..stages.pairs_dataset import pairs_preferences, pairs_prompts
from ..stages.preferences import preferences
from ..stages.prompts import prompts
from ..stages.reward_ensemble import reward_ensemble
from ..stages.reward_model import reward_model
from ..stages.rsft import samples_serve_first_round
from ..stages.samples import samples
from ..stages.sft import sft
from ..training.curve import Curve

if TYPE_CHECKING:
    from rich.table import Table

# Stage names of earlier versions, still accepted by --force.
RENAMED_STAGES = {"base_model": "model", "eval": "evaluation"}


def plan(recipe: Recipe, run_dir: Path) -> list[Step]:
    """Every stage `recipe` runs, in order, each handed exactly what it reads (see `call`)."""
    policy = run_dir / "model" if builds_model(recipe) else base_location(recipe.model.name_or_path)
    base = policy
    if recipe.sft is not None:
        policy = run_dir / "sft"  # every stage after SFT starts from its output
    inputs = stage_inputs(recipe, run_dir, policy)

    own_pairs = recipe.preferences.dataset is not None  # your own pairs stand in for sampling and labeling
    steps = [call(pairs_prompts, inputs, name="prompts") if own_pairs else call(prompts, inputs)]
    if builds_model(recipe):
        steps.append(call(model, inputs, seed=recipe.seed if recipe.model.tiny else None))
    if recipe.sft is not None:
        steps.append(call(sft, inputs, policy=base))
    if own_pairs:
        steps.append(call(pairs_preferences, inputs, name="preferences"))
    else:
        steps += [call(samples, inputs), call(preferences, inputs)]
    steps += reward_steps(recipe, run_dir, inputs)
    # the stages above read `seed`; training and evaluation the training seed, a variant its own
    for name, method in recipe.methods().items():
        training = {"curve": curve(recipe, run_dir, method), "seed": recipe.policy_seed(name)}
        if method.stage == "rsft":  # round 0 selects among the samples stage's answers when they serve
            serve = not own_pairs and samples_serve_first_round(recipe.samples, method)
            training["first_round"] = run_dir / "samples" if serve else None
        steps.append(call(method.stage_function, inputs, name=name, section=method, **training))
    steps.append(call(evaluation, inputs, seed=recipe.seed_of_training()))
    return steps


def reward_steps(recipe: Recipe, run_dir: Path, inputs: dict) -> list[Step]:
    """The reward model; with an ensemble, each member (member 0 is the single reward model, stored as one) and
    then the stage that reads them as one, under the name every consumer reads: reward_model."""
    ensemble = recipe.reward_model.ensemble
    if ensemble is None:
        return [call(reward_model, inputs)]
    single = recipe.reward_model.single()
    members = [
        call(
            reward_model,
            inputs,
            name=f"{MEMBER_PREFIX}{index}",
            section=single,
            seed=recipe.seed + index,
            resample_seed=recipe.seed + index if ensemble.bootstrap and index > 0 else None,
        )
        for index in range(ensemble.members)
    ]
    together = call(
        reward_ensemble,
        inputs,
        name="reward_model",
        section=ensemble,
        members=[run_dir / step.name for step in members],
        batch_size=single.batch_size,
    )
    return members + [together]


def stage_inputs(recipe: Recipe, run_dir: Path, policy: Path | str) -> dict:
    """Everything a stage may read, by the name of the keyword parameter that reads it. `settings` is the
    stage's own recipe section; a parameter named after a stage is that stage's output directory."""
    settings, methods, device = recipe.model, recipe.methods(), device_for(recipe.compute, visible=False)
    return {
        "sections": {
            "prompts": recipe.prompts,
            "sft": recipe.sft,
            "samples": recipe.samples,
            "preferences": recipe.preferences,
            "reward_model": recipe.reward_model,
            "evaluation": recipe.evaluation,
        },
        "outputs": {name: run_dir / name for name in ("prompts", "samples", "preferences", "reward_model")},
        "seed": recipe.seed,
        "tiny": settings.tiny,
        "gguf": settings.gguf or (settings.builtin and builtin_gguf_path(settings.builtin)),
        "policy": policy,
        "loading": Loading.of(settings, device),
        "tuning": Tuning.of(settings),
        "lora": settings.lora,
        "trust_remote_code": settings.trust_remote_code,
        "reward_loading": Loading.of(settings, device, load_in_4bit=recipe.reward_model.load_in_4bit),
        "value_model_lora": recipe.reward_model.lora,
        "compute": resolved_compute(recipe.compute),
        "device": device,
        "labeler": recipe.labeler,
        "gold_labeler": recipe.gold(),
        "pairs": recipe.preferences.dataset,
        "policies": {"reference": policy} | {name: run_dir / name for name in methods},
        "best_of_n_from_samples": recipe.preferences.dataset is None
        and samples_serve_best_of_n(recipe.samples, recipe.evaluation),
        "implicit_rewards": {name: method.beta for name, method in methods.items() if method.IMPLICIT_REWARD},
    }


def call(function, inputs: dict, name: str | None = None, section=None, **given) -> Step:
    """The Step that calls stage `function` under `name` (default: its own) with what its keyword
    parameters name: `settings`, its recipe section (`section`, default the stage's own), the outputs of
    earlier stages, values from `inputs`, and `given` values first of all."""
    stage_name = function.__name__
    arguments = {}
    for parameter in inspect.signature(function).parameters:
        if parameter == "out_dir":
            continue
        if parameter in given:
            arguments[parameter] = given[parameter]
        elif parameter == "settings":
            arguments[parameter] = section if section is not None else inputs["sections"][stage_name]
        elif parameter in inputs["outputs"]:
            arguments[parameter] = inputs["outputs"][parameter]
        elif parameter in getattr(function, "added_later", {}) and parameter not in inputs:
            arguments[parameter] = function.added_later[parameter]
        else:
            arguments[parameter] = inputs[parameter]
    return Step(name or stage_name, function, arguments)


def curve(recipe: Recipe, run_dir: Path, method: Method) -> Curve | None:
    """The held-out curve a training method draws, when its section asks for one."""
    every, e = method.curve_every(), recipe.evaluation
    if not every:
        return None
    device = device_for(recipe.compute, visible=False)
    reward_loading = Loading.of(recipe.model, device, load_in_4bit=recipe.reward_model.load_in_4bit)
    gold = recipe.gold()
    return Curve(
        every,
        run_dir / "prompts",
        e.curve_prompts,
        e.max_new_tokens,
        e.temperature,
        e.batch_size,
        gold,
        run_dir / "reward_model",
        reward_loading,
    )


def builds_model(recipe: Recipe) -> bool:
    """Does the run make its initial policy (a tiny model, or a GGUF conversion) in a model stage?"""
    return recipe.model.tiny is not None or recipe.model.gguf is not None or recipe.model.builtin is not None


def base_location(name_or_path: str) -> Path | str:
    """A local model directory as a Path (fingerprinted by its files), a hub id as it is."""
    return Path(name_or_path) if Path(name_or_path).is_dir() else name_or_path


def run_recipe(recipe: Recipe, run_dir: Path, console: Console | None = None, force: str | None = None) -> dict:
    """Run every stage of `recipe` into run_dir and return the contents of metrics.json.

    A stage whose fingerprint matches its output in run_dir (an earlier run) or an entry of the stage
    store (any run's: another recipe, another seed of a study) is reused or linked instead of run again,
    unless it is the stage named by `force`, or reads the output of a stage rebuilt in this run.
    """
    console = console or make_console()
    distributed.start(cpu=device_for(recipe.compute) == "cpu")
    if not distributed.is_main():
        console = make_console(quiet=True)
    steps = plan(recipe, run_dir)
    force = checked_force(force, steps)
    check_hub_labelers([recipe.labeler, recipe.gold_labeler])
    run = RunDirectory.open(run_dir, recipe, console)
    for step in steps:
        if step.name == "samples" or (step.name == "preferences" and recipe.preferences.dataset is not None):
            # every prompt must fit the context with every response length, before sampling (or labeling)
            check_context(recipe, step.arguments["policy"], run_dir / "prompts")
        run.step(step, force=force)
    metrics = write_report(run_dir) if distributed.is_main() else None
    if metrics is not None and recipe.compute.report_to and "evaluation" in run.rebuilt:
        cpu = device_for(recipe.compute) == "cpu"
        log_final_metrics(recipe.compute.report_to, run_dir, metrics, cpu, console)
    distributed.barrier()
    console.print(stage_summary(json.loads((run_dir / "run.json").read_text())["stages"]))
    return distributed.broadcast(metrics)


def checked_force(stage: str | None, steps: list[Step]) -> str | None:
    """The --force stage's current name; a RecipeError if the recipe has no such stage."""
    stage = RENAMED_STAGES.get(stage, stage)
    names = [step.name for step in steps]
    if stage is not None and stage not in names:
        raise RecipeError(f"--force: {stage!r} is not a stage of this recipe. Fix: one of {', '.join(names)}.")
    return stage


def check_context(recipe: Recipe, policy: Path | str, prompts_dir: Path) -> None:
    """Refuse prompts that do not fit the policy's context with the longest response the recipe asks for."""
    from transformers import AutoConfig

    lengths = {"evaluation.max_new_tokens": recipe.evaluation.max_new_tokens}
    if recipe.preferences.dataset is None:  # your own pairs are not sampled
        lengths["samples.max_new_tokens"] = recipe.samples.max_new_tokens
    for name, method in recipe.methods().items():  # every method that samples as it trains, variants too
        if hasattr(method, "max_new_tokens"):
            section = name if name == method.stage else f"variants.{name}"
            lengths[f"{section}.max_new_tokens"] = method.max_new_tokens
    tokenizer = load_tokenizer(str(policy), recipe.model.trust_remote_code)
    config = AutoConfig.from_pretrained(str(policy), trust_remote_code=recipe.model.trust_remote_code)
    texts = read_prompts(prompts_dir, "train") + read_prompts(prompts_dir, "heldout")
    check(
        getattr(config.get_text_config(), "max_position_embeddings", None),
        texts,
        [prompt_ids(tokenizer, t) for t in texts],
        lengths,
    )


def stage_summary(stages: dict) -> "Table":
    """One screen: each stage's wall time (when it was built), peak memory and generation speed."""
    from rich.table import Table

    table = Table(title="time per stage", title_justify="left", box=None, pad_edge=False)
    for column in ("stage", "seconds", "share", "peak RSS (MiB)", "new tokens/s", ""):
        table.add_column(column, justify="left" if column in ("stage", "") else "right")
    total = sum(info["seconds"] for info in stages.values()) or 1.0
    for name, info in stages.items():
        tokens, seconds, peak = info.get("generated_tokens"), info["seconds"], info.get("peak_rss_mib")
        speed = f"{tokens / seconds:,.0f}" if tokens and seconds else ""
        table.add_row(
            name,
            f"{seconds:,.1f}",
            f"{seconds / total:.0%}",
            f"{peak:,.0f}" if peak else "",
            speed,
            "reused" if info["reused"] else "",
        )
    table.add_row("total", f"{total:,.1f}", "", "", "", "")
    return table
