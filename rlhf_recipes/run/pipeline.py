"""run_recipe: the whole method on one screen, one plain function per stage, in order."""

import json
from pathlib import Path

from rich.console import Console

from . import distributed
from .fingerprints import stage_fingerprints
from ..generation.formatting import uses_chat_template
from ..models.loading import device_for, load_tokenizer, prepare_base_model
from ..stages.prompts import prepare_prompts, read_prompts
from ..config.schema import Recipe
from ..reporting.report import write_report
from .directory import RunDirectory
from ..stages import STAGES
from ..stages.curves import CurveSpec
from ..stages.dpo import train_dpo
from ..stages.evaluate import evaluate_policies
from ..stages.label import label_responses
from ..stages.ppo import train_ppo
from ..stages.reward import train_reward_model
from ..stages.sample import sample_responses
from ..stages.sft import train_sft
from ..models.tiny import build_tiny_model


def run_recipe(
    recipe: Recipe, run_dir: Path, console: Console | None = None, siblings: list[Path] = (), force: str | None = None
) -> dict:
    """Run every stage of `recipe` into run_dir and return the contents of metrics.json.

    A stage whose fingerprint matches its output in run_dir (an earlier run) or in one of
    `siblings` (other variants of a sweep) is reused instead of run again, unless it comes at or
    after the stage named by `force`.
    """
    console = console or Console(stderr=True)
    distributed.start(cpu=device_for(recipe.compute) == "cpu")
    if not distributed.is_main():
        console = Console(stderr=True, quiet=True)
    run = RunDirectory.open(run_dir, recipe, siblings, console)
    fingerprints = stage_fingerprints(recipe)
    model, compute, seed = recipe.model, recipe.compute, recipe.seed
    gold = recipe.gold_labeler or recipe.labeler

    def step(stage: str, function, *args, main_only: bool = False, **kwargs) -> dict:
        rebuild = force is not None and STAGES.index(stage) >= STAGES.index(force)
        summary, reused = run.step(stage, fingerprints[stage], function, *args, force=rebuild, main_only=main_only, **kwargs)
        shown = ", ".join(f"{key}={_short(value)}" for key, value in summary.items())
        console.print(f"[bold]{stage}[/bold] {'reused' if reused else 'done'}: {shown}")
        return summary

    step("prompts", prepare_prompts, recipe.prompts, seed, main_only=True)
    train, heldout = read_prompts(run.path("prompts"), "train"), read_prompts(run.path("prompts"), "heldout")

    if recipe.model.tiny is not None:
        step("base_model", build_tiny_model, recipe.model.tiny, seed=seed, main_only=True)
        policy = str(run.path("base_model"))
    else:  # a GGUF file is converted into a shared cache once, by the main process
        policy = distributed.broadcast(prepare_base_model(recipe.model, run.path("base_model"), seed) if distributed.is_main() else None)
    run.record("base_model", policy)
    chat = uses_chat_template(load_tokenizer(policy, recipe.model.trust_remote_code))

    if recipe.sft is not None:
        step("sft", train_sft, recipe.sft, model, compute, policy, seed=seed)
        policy = str(run.path("sft"))

    lengths = {"sampling.max_new_tokens": recipe.sampling.max_new_tokens, "evaluation.max_new_tokens": recipe.evaluation.max_new_tokens}
    if recipe.ppo is not None:
        lengths["ppo.max_new_tokens"] = recipe.ppo.max_new_tokens
    step("samples", sample_responses, recipe.sampling, model, compute, policy, train, heldout, seed=seed, max_new_tokens=lengths)
    step("preferences", label_responses, recipe.labeler, gold, recipe.preferences, run.path("samples"), chat, seed=seed, main_only=True)
    step("reward_model", train_reward_model, recipe.reward, model, compute, policy, run.path("preferences"), seed=seed)
    reward_model = str(run.path("reward_model"))

    policies = {"reference": policy}
    curve = CurveSpec(recipe.evaluation, gold, heldout, reward_model)
    if recipe.ppo is not None:
        step("ppo", train_ppo, recipe.ppo, model, recipe.reward, compute, policy, reward_model, train, seed=seed, curve=curve)
        policies["ppo"] = str(run.path("ppo"))
    if recipe.dpo is not None:
        step("dpo", train_dpo, recipe.dpo, model, recipe.reward, compute, policy, run.path("preferences"), seed=seed, curve=curve)
        policies["dpo"] = str(run.path("dpo"))

    step("eval", evaluate_policies, recipe, policies, reward_model, heldout, run.path("preferences"))
    metrics = write_report(run_dir) if distributed.is_main() else None
    distributed.barrier()
    console.print(stage_summary(json.loads(run.path("run.json").read_text())["stages"]))
    return distributed.broadcast(metrics)


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
        table.add_row(name, f"{seconds:,.1f}", f"{seconds / total:.0%}", f"{peak:,.0f}" if peak else "", speed,
                      "reused" if info["reused"] else "")
    table.add_row("total", f"{total:,.1f}", "", "", "", "")
    return table


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
