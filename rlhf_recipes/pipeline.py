"""run_recipe: the whole method on one screen, one plain function per stage, in order."""

from pathlib import Path

from rich.console import Console

from .formatting import uses_chat_template
from .models import load_tokenizer, prepare_base_model
from .prompts import prepare_prompts
from .recipe import Recipe
from .report import write_report
from .run_directory import RunDirectory
from .stages.curves import CurveSpec
from .stages.dpo import train_dpo
from .stages.evaluate import evaluate_policies
from .stages.label import label_responses
from .stages.ppo import train_ppo
from .stages.reward import train_reward_model
from .stages.sample import sample_responses
from .stages.sft import train_sft


def run_recipe(recipe: Recipe, run_dir: Path, console: Console | None = None) -> dict:
    """Run every stage of `recipe` into run_dir and return the contents of metrics.json."""
    console = console or Console(stderr=True)
    run = RunDirectory.create(run_dir, recipe)
    seed = recipe.seed

    def announce(stage: str, summary: dict) -> None:
        console.print(f"[bold]{stage}[/bold] done: " + ", ".join(f"{k}={_short(v)}" for k, v in summary.items()))

    with run.stage("prompts") as out:
        train, heldout = prepare_prompts(recipe.prompts, seed, out)
    announce("prompts", {"train": len(train), "heldout": len(heldout)})

    if recipe.model.tiny is not None:
        with run.stage("base_model") as out:
            prepare_base_model(recipe.model, out, seed)
        policy = str(run.path("base_model"))
    else:
        policy = prepare_base_model(recipe.model, run.path("base_model"), seed)
    run.record("base_model", policy)
    chat = uses_chat_template(load_tokenizer(policy, recipe.model.trust_remote_code))
    model, compute = recipe.model, recipe.compute
    gold = recipe.gold_labeler or recipe.labeler

    if recipe.sft is not None:
        with run.stage("sft") as out:
            announce("sft", train_sft(recipe.sft, model, compute, policy, out, seed))
        policy = str(run.path("sft"))

    with run.stage("samples") as out:
        announce("samples", sample_responses(recipe.sampling, model, compute, policy, train, heldout, out, seed))

    with run.stage("preferences") as out:
        preferences = label_responses(recipe.labeler, gold, recipe.preferences, run.path("samples"), chat, out, seed)
    announce("preferences", {split: preferences[split]["pairs"] for split in ("train", "heldout")})

    with run.stage("reward_model") as out:
        reward = train_reward_model(recipe.reward, model, compute, policy, run.path("preferences"), out, seed)
    announce("reward_model", {"heldout_accuracy": reward["heldout"]["vs_gold"]})
    reward_model = str(run.path("reward_model"))

    policies = {"reference": policy}
    curve = CurveSpec(recipe.evaluation, gold, heldout, reward_model)
    if recipe.ppo is not None:
        with run.stage("ppo") as out:
            summary = train_ppo(recipe.ppo, model, recipe.reward, compute, policy, reward_model, train, out, seed, curve)
        announce("ppo", summary)
        policies["ppo"] = str(run.path("ppo"))
    if recipe.dpo is not None:
        with run.stage("dpo") as out:
            announce("dpo", train_dpo(recipe.dpo, model, recipe.reward, compute, policy, run.path("preferences"), out, seed, curve))
        policies["dpo"] = str(run.path("dpo"))

    with run.stage("eval") as out:
        evaluate_policies(recipe, policies, reward_model, heldout, run.path("preferences"), out)
    return write_report(run_dir)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
