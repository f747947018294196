"""The whole method on one screen: `plan` names every stage of a recipe, in order, with the exact
arguments it is called with; `run_recipe` runs (or reuses) them and writes the report."""

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from ..config.schema import Recipe
from ..errors import RecipeError
from ..models.builtin import builtin_gguf_path
from ..models.loading import Loading, Tuning, device_for
from ..reporting.report import write_report
from ..stages.dpo import dpo
from ..stages.evaluation import evaluation, samples_serve_best_of_n
from ..stages.model import model
from ..stages.ppo import ppo
from ..stages.preferences import preferences
from ..stages.prompts import prompts
from ..stages.reward_model import reward_model
from ..stages.samples import samples
from ..stages.sft import sft
from ..training.curve import Curve
from . import distributed
from .directory import RunDirectory
from .stage import Step

if TYPE_CHECKING:
    from rich.table import Table

# Stage names of earlier versions, still accepted by --force.
RENAMED_STAGES = {"base_model": "model", "eval": "evaluation"}


def plan(recipe: Recipe, run_dir: Path) -> list[Step]:
    """Every stage `recipe` runs, in order, each with exactly what it reads. A stage reads an earlier
    stage's output as run_dir/<that stage's name>."""
    seed, settings, compute = recipe.seed, recipe.model, recipe.compute
    gold = recipe.gold_labeler or recipe.labeler
    loading, tuning = Loading.of(settings), Tuning.of(settings)
    reward_loading = Loading.of(settings, load_in_4bit=recipe.reward_model.load_in_4bit)
    device = device_for(compute)
    steps = [Step("prompts", prompts, {"prompts": recipe.prompts, "seed": seed})]

    if settings.tiny is not None:
        steps.append(Step("model", model, {"tiny": settings.tiny, "seed": seed}))
    elif settings.gguf is not None or settings.builtin is not None:
        steps.append(Step("model", model, {"gguf": settings.gguf or builtin_gguf_path(settings.builtin)}))
    policy = run_dir / "model" if steps[-1].name == "model" else base_location(settings.name_or_path)

    if recipe.sft is not None:
        steps.append(
            Step(
                "sft",
                sft,
                {
                    "sft": recipe.sft,
                    "loading": loading,
                    "lora": settings.lora,
                    "compute": compute,
                    "policy": policy,
                    "seed": seed,
                },
            )
        )
        policy = run_dir / "sft"

    steps.append(
        Step(
            "samples",
            samples,
            {
                "samples": recipe.samples,
                "loading": loading,
                "device": device,
                "policy": policy,
                "prompts": run_dir / "prompts",
                "seed": seed,
            },
        )
    )
    steps.append(
        Step(
            "preferences",
            preferences,
            {
                "labeler": recipe.labeler,
                "gold_labeler": gold,
                "preferences": recipe.preferences,
                "samples": run_dir / "samples",
                "policy": policy,
                "trust_remote_code": settings.trust_remote_code,
                "seed": seed,
            },
        )
    )
    steps.append(
        Step(
            "reward_model",
            reward_model,
            {
                "reward_model": recipe.reward_model,
                "loading": reward_loading,
                "compute": compute,
                "policy": policy,
                "preferences": run_dir / "preferences",
                "seed": seed,
            },
        )
    )

    def curve(every: int | None) -> Curve | None:
        e = recipe.evaluation
        return (
            Curve(
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
            if every
            else None
        )

    policies = {"reference": policy}
    if recipe.ppo is not None:
        steps.append(
            Step(
                "ppo",
                ppo,
                {
                    "ppo": recipe.ppo,
                    "loading": loading,
                    "tuning": tuning,
                    "compute": compute,
                    "policy": policy,
                    "reward_model": run_dir / "reward_model",
                    "reward_loading": reward_loading,
                    "value_model_lora": recipe.reward_model.lora,
                    "prompts": run_dir / "prompts",
                    "curve": curve(recipe.ppo.eval_every_updates),
                    "seed": seed,
                },
            )
        )
        policies["ppo"] = run_dir / "ppo"
    if recipe.dpo is not None:
        steps.append(
            Step(
                "dpo",
                dpo,
                {
                    "dpo": recipe.dpo,
                    "loading": loading,
                    "tuning": tuning,
                    "compute": compute,
                    "policy": policy,
                    "preferences": run_dir / "preferences",
                    "curve": curve(recipe.dpo.eval_every_steps),
                    "seed": seed,
                },
            )
        )
        policies["dpo"] = run_dir / "dpo"

    steps.append(
        Step(
            "evaluation",
            evaluation,
            {
                "evaluation": recipe.evaluation,
                "gold_labeler": gold,
                "loading": loading,
                "reward_loading": reward_loading,
                "device": device,
                "policies": policies,
                "reward_model": run_dir / "reward_model",
                "best_of_n_from_samples": samples_serve_best_of_n(recipe.samples, recipe.evaluation),
                "prompts": run_dir / "prompts",
                "preferences": run_dir / "preferences",
                "dpo_beta": recipe.dpo.beta if recipe.dpo is not None else None,
                "seed": seed,
            },
        )
    )
    return steps


def base_location(name_or_path: str) -> Path | str:
    """A local model directory as a Path (fingerprinted by its files), a hub id as it is."""
    return Path(name_or_path) if Path(name_or_path).is_dir() else name_or_path


def run_recipe(
    recipe: Recipe, run_dir: Path, console: Console | None = None, siblings: list[Path] = (), force: str | None = None
) -> dict:
    """Run every stage of `recipe` into run_dir and return the contents of metrics.json.

    A stage whose fingerprint matches its output in run_dir (an earlier run) or in one of `siblings`
    (other variants of a sweep) is reused instead of run again, unless it is the stage named by
    `force`, or reads the output of a stage rebuilt in this run.
    """
    console = console or Console(stderr=True)
    distributed.start(cpu=device_for(recipe.compute) == "cpu")
    if not distributed.is_main():
        console = Console(stderr=True, quiet=True)
    steps = plan(recipe, run_dir)
    force = checked_force(force, steps)
    run = RunDirectory.open(run_dir, recipe, siblings, console)
    for step in steps:
        if step.name == "samples":  # every prompt must fit the context with every response length, before sampling
            check_context(recipe, step.arguments["policy"], run_dir / "prompts")
        run.step(step, force=force)
    metrics = write_report(run_dir) if distributed.is_main() else None
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

    from ..generation.formatting import prompt_ids
    from ..generation.sampling import check_context as check
    from ..models.loading import load_tokenizer
    from ..stages.prompts import read_prompts

    lengths = {
        "samples.max_new_tokens": recipe.samples.max_new_tokens,
        "evaluation.max_new_tokens": recipe.evaluation.max_new_tokens,
    }
    if recipe.ppo is not None:
        lengths["ppo.max_new_tokens"] = recipe.ppo.max_new_tokens
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
