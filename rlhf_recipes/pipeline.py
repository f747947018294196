"""run_recipe: the whole method on one screen, one plain function per stage, in order."""

from pathlib import Path

from rich.console import Console

from .fingerprints import stage_fingerprints
from .formatting import uses_chat_template
from .models import load_tokenizer, prepare_base_model
from .prompts import prepare_prompts, read_prompts
from .recipe import Recipe
from .report import write_report
from .run_directory import RunDirectory
from .stages import STAGES
from .stages.curves import CurveSpec
from .stages.dpo import train_dpo
from .stages.evaluate import evaluate_policies
from .stages.label import label_responses
from .stages.ppo import train_ppo
from .stages.reward import train_reward_model
from .stages.sample import sample_responses
from .stages.sft import train_sft
from .tiny_model import build_tiny_model


def run_recipe(
    recipe: Recipe, run_dir: Path, console: Console | None = None, siblings: list[Path] = (), force: str | None = None
) -> dict:
    """Run every stage of `recipe` into run_dir and return the contents of metrics.json.

    A stage whose fingerprint matches its output in run_dir (an earlier run) or in one of
    `siblings` (other variants of a sweep) is reused instead of run again, unless it comes at or
    after the stage named by `force`.
    """
    console = console or Console(stderr=True)
    run = RunDirectory.open(run_dir, recipe, siblings)
    fingerprints = stage_fingerprints(recipe)
    model, compute, seed = recipe.model, recipe.compute, recipe.seed
    gold = recipe.gold_labeler or recipe.labeler

    def step(stage: str, function, *args, **kwargs) -> dict:
        rebuild = force is not None and STAGES.index(stage) >= STAGES.index(force)
        summary, reused = run.step(stage, fingerprints[stage], function, *args, force=rebuild, **kwargs)
        shown = ", ".join(f"{key}={_short(value)}" for key, value in summary.items())
        console.print(f"[bold]{stage}[/bold] {'reused' if reused else 'done'}: {shown}")
        return summary

    step("prompts", prepare_prompts, recipe.prompts, seed)
    train, heldout = read_prompts(run.path("prompts"), "train"), read_prompts(run.path("prompts"), "heldout")

    if recipe.model.tiny is not None:
        step("base_model", build_tiny_model, recipe.model.tiny, seed=seed)
        policy = str(run.path("base_model"))
    else:
        policy = prepare_base_model(recipe.model, run.path("base_model"), seed)
    run.record("base_model", policy)
    chat = uses_chat_template(load_tokenizer(policy, recipe.model.trust_remote_code))

    if recipe.sft is not None:
        step("sft", train_sft, recipe.sft, model, compute, policy, seed=seed)
        policy = str(run.path("sft"))

    lengths = {"sampling.max_new_tokens": recipe.sampling.max_new_tokens, "evaluation.max_new_tokens": recipe.evaluation.max_new_tokens}
    if recipe.ppo is not None:
        lengths["ppo.max_new_tokens"] = recipe.ppo.max_new_tokens
    step("samples", sample_responses, recipe.sampling, model, compute, policy, train, heldout, seed=seed, max_new_tokens=lengths)
    step("preferences", label_responses, recipe.labeler, gold, recipe.preferences, run.path("samples"), chat, seed=seed)
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
    return write_report(run_dir)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
