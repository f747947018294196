"""The `rlhf` command: parse, load, dispatch. Heavy imports happen inside commands so --help is instant."""

import errno
import os
import sys
from pathlib import Path

import typer

from .console import make_console, styled
from .errors import RecipeError

# Help text is plain text: rich markup would eat "[default: ...]" and any bracket in a path (issue 21).
app = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="Simulated-preference RLHF recipes on TRL."
)
console = make_console()

STORE = typer.Option(
    None,
    "--store",
    help="The stage store, where every finished stage is kept for any run to link [default: "
    "$RLHF_RECIPES_STORE, else ~/.cache/rlhf-recipes/store].",
    show_default=False,
)
OVERRIDES = typer.Argument(None, help="Dotted overrides, e.g. ppo.kl_coef=0.1 dpo=null", show_default=False)
DEBUG = typer.Option(False, "--debug", help="Show tracebacks and library warnings.")


def _fail(error: RecipeError, code: int = 2) -> None:
    for line in error.problems:
        console.print(styled("error:", "red"), line)
    raise typer.Exit(code)


@app.command()
def validate(recipe: Path, overrides: list[str] = OVERRIDES) -> None:
    """Check a recipe (and overrides) without training: print the plan and each stage's memory estimate."""
    from .run.preflight import checked_recipe

    try:
        loaded = checked_recipe(recipe, overrides or [])
    except RecipeError as error:
        _fail(error)
    console.print(f"{recipe}: valid.")
    from .config.loader import study_runs
    from .config.schema import Recipe

    runs = study_runs(loaded, loaded.model_dump(mode="json"))
    if runs:
        console.print(f"Study: {len(runs)} runs ({', '.join(run.label for run in runs)}), each as follows.")
        loaded = Recipe.model_validate(runs[0].data)
    console.print(describe_plan(loaded))
    from .models.memory import memory_table

    console.print(memory_table(loaded))


def describe_plan(recipe) -> str:
    """One line per stage that will run (the pipeline's own plan), with what it trains and how."""
    from .config.schema import MEMBER_PREFIX
    from .run.pipeline import plan

    model, reward = recipe.model, recipe.reward_model
    source = (
        model.name_or_path or (model.gguf and f"GGUF {model.gguf}") or model.builtin or "tiny model (built locally)"
    )
    tuning = (
        "full fine-tuning"
        if model.lora is None
        else f"LoRA r={model.lora.rank}" + (" on 4-bit NF4" if model.load_in_4bit else "")
    )
    reward_tuning = (
        "full"
        if reward.lora is None
        else f"LoRA r={reward.lora.rank}" + (" on 4-bit NF4" if reward.load_in_4bit else "")
    )
    what = {
        "prompts": f"split {recipe.prompts.heldout_fraction:g} of the prompts off for evaluation"
        if recipe.prompts is not None
        else "the prompts of your pairs: train, and held out for evaluation",
        "model": "build the tiny model" if model.tiny else "convert the GGUF file (cached)",
        "sft": recipe.sft and f"{recipe.sft.epochs:g} epoch(s) on {recipe.sft.demonstrations.name}",
        "samples": f"{recipe.samples.responses_per_prompt} responses per prompt",
        "preferences": f"pairing {recipe.preferences.pairing}, flip prob {recipe.preferences.label_flip_prob:g}"
        if recipe.preferences.dataset is None
        else f"your pairs from {recipe.preferences.dataset.source}",
        "reward_model": f"{reward.epochs:g} epoch(s), {reward_tuning}"
        if reward.ensemble is None
        else f"the {reward.ensemble.members} members read as one: {reward.ensemble.aggregate}",
        "evaluation": f"{recipe.evaluation.responses_per_prompt} responses per held-out prompt per policy",
    } | {name: method.describe() for name, method in recipe.methods().items()}
    for index in range(reward.ensemble.members if reward.ensemble else 0):
        resampled = ", on a bootstrap resample of the pairs" if reward.ensemble.bootstrap and index else ""
        what[f"{MEMBER_PREFIX}{index}"] = f"{reward.epochs:g} epoch(s), {reward_tuning}, seed + {index}{resampled}"
    labeler = recipe.labeler.kind if recipe.labeler else "your own pairs"
    lines = [f"Policy: {source}, {model.dtype}, {tuning}; labeler: {labeler}", "Stages:"]
    steps = plan(recipe, Path("runs") / recipe.name)
    width = max(len(step.name) for step in steps)
    lines += [f"  {step.name:<{width}}  {what[step.name]}" for step in steps]
    return "\n".join(lines)


@app.command()
def run(
    recipe: Path,
    overrides: list[str] = OVERRIDES,
    output_dir: Path = typer.Option(None, "--output-dir", help="Run directory [default: runs/<name>]."),
    force: str = typer.Option(
        None, "--force", help="Rebuild this stage, and every stage that reads its output, even if unchanged."
    ),
    launcher: str = typer.Option(
        None,
        "--launcher",
        help="'accelerate': run as several processes with `accelerate launch` [default: accelerate "
        "when the recipe sets compute.accelerate_config, else one process].",
    ),
    num_processes: int = typer.Option(
        None,
        "--num-processes",
        min=1,
        help="Processes for --launcher accelerate [default: the accelerate config's, else 1].",
    ),
    store: Path = STORE,
    debug: bool = DEBUG,
) -> None:
    """Run a recipe end to end into one run directory; rerun it to resume (unchanged stages are reused,
    and stages that any run already stored are linked)."""
    from .run.launch import launch_command
    from .run.preflight import checked_recipe
    from .runtime.store import STORE_VARIABLE, StageStore

    try:
        loaded = checked_recipe(recipe, overrides or [])
        check_force(force, loaded)
        command = launch_command(loaded, launcher, num_processes)
        if store is not None:  # for this process and the ones it launches
            os.environ[STORE_VARIABLE] = str(store.expanduser().absolute())
        StageStore.open()  # a store that cannot be written is an error now, not after the first stage
    except RecipeError as error:
        _fail(error)
    run_dir = output_dir or Path("runs") / loaded.name
    if command is not None:  # this process only launches the processes that run the recipe
        import subprocess

        arguments = [str(recipe), *(overrides or []), "--output-dir", str(run_dir)]
        arguments += (["--force", force] if force else []) + (["--debug"] if debug else [])
        try:
            raise typer.Exit(subprocess.run([*command, *arguments]).returncode)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    _offline_unless_needed(loaded)  # before huggingface_hub is imported: it reads the variable once
    from .models.loading import device_for
    from .runtime.distributed import finish, is_main, start

    try:
        start(cpu=device_for(loaded.compute) == "cpu")  # join the other processes, if accelerate launched several
    except RecipeError as error:
        _fail(error)
    console.quiet = not is_main()  # one voice when several processes run the recipe
    _quiet_libraries(debug)
    try:
        _run_or_study(loaded, run_dir, force, debug)
    finally:
        finish()


def _run_or_study(loaded, run_dir: Path, force: str | None, debug: bool) -> None:
    """Run the recipe (or its study) in this process, turning what can go wrong into its message and exit code."""
    from .run.pipeline import run_recipe
    from .run.study import run_study

    try:
        if loaded.study is not None:
            metrics = run_study(loaded, run_dir, console, force=force)
            console.print(styled("done:", "green"), f"{run_dir / 'report.md'} (one run per seed inside)")
            for label, summary in metrics["conditions"].items():
                console.print(("" if label == "all" else f"{label}: ") + summary["summary"])
            return
        metrics = run_recipe(loaded, run_dir, console, force=force)
    except RecipeError as error:
        if debug:
            raise
        _fail(error)
    except KeyboardInterrupt:
        console.print(
            styled("interrupted:", "yellow"),
            f"the finished stages are kept in {run_dir}. To resume, run the same command again: unchanged "
            "stages are reused, and a training stage with a checkpoint resumes from it.",
        )
        raise typer.Exit(130) from None
    except OSError as error:
        if debug or error.errno != errno.ENOSPC:
            raise
        _fail(
            RecipeError(
                f"no space left on device while writing {error.filename or 'the run'}. Fix: free some space, "
                f"or pass --output-dir on another disk; the finished stages in {run_dir} are kept and a rerun resumes."
            )
        )
    except Exception as error:
        if debug:
            raise
        console.print(styled("internal error:", "red"), f"{type(error).__name__}: {error}")
        console.print("Rerun with --debug for the traceback, and please report it.")
        raise typer.Exit(1) from error
    console.print(styled("done:", "green"), str(run_dir / "report.md"))
    if metrics["gold_labeler"] is None:
        console.print("  no gold judge: policies compared by the learned reward")
    for name, policy in metrics["policies"].items():
        judged = (
            f"gold {policy['gold_mean']:+.3f}  win rate {policy['win_rate_vs_reference']:.2f}"
            if metrics["gold_labeler"] is not None
            else f"learned reward {policy['reward_model_mean']:+.3f}  "
            f"win rate (reward model) {policy['reward_model_win_rate_vs_reference']:.2f}"
        )
        console.print(f"  {name:<10} {judged}  KL {policy['kl_mean']:.2f}")
    rm = metrics["reward_model"]
    accuracy = rm["heldout_accuracy"] if "heldout_accuracy" in rm else rm["heldout_accuracy_vs_labels"]
    against = "gold" if metrics["gold_labeler"] is not None else "the dataset's labels"
    console.print(f"  reward model held-out accuracy {accuracy:.3f} (against {against})")


@app.command()
def reference() -> None:
    """Print the recipe reference (docs/recipe.md): every section and key, with its type, default and meaning."""
    import rlhf_recipes.stages.methods  # noqa: F401  (registers the methods, whose sections the reference lists)

    from .config.docs import render

    print(render(), end="")


@app.command()
def report(run_dir: Path, debug: bool = DEBUG) -> None:
    """Rebuild metrics.json, plots, report.md and report.html of a finished run, without retraining."""
    if (run_dir / "study.json").is_file():
        from .reporting.study_report import write_study_report

        try:
            write_study_report(run_dir)
        except RecipeError as error:
            _fail(error)
        console.print(f"rebuilt {run_dir / 'report.md'} and {run_dir / 'report.html'} of the study")
        return
    if not (run_dir / "evaluation" / "generations.jsonl").is_file() or not (run_dir / "recipe.resolved.yaml").is_file():
        _fail(
            RecipeError(
                f"{run_dir}: not a finished run (no evaluation/generations.jsonl). Fix: name a run directory "
                "that `rlhf run` completed, or finish it with `rlhf run`."
            )
        )
    _quiet_libraries(debug)
    from .reporting.report import write_report

    try:
        write_report(run_dir)
    except RecipeError as error:
        _fail(error)
    console.print(f"rebuilt {run_dir / 'report.md'}, {run_dir / 'report.html'}, {run_dir / 'metrics.json'}")


@app.command()
def compare(
    paths: list[Path] = typer.Argument(..., help="Run or study directories (or their metrics.json files)."),
) -> None:
    """Compare runs and studies as markdown, grouped by gold judge: every policy, and with two or more runs
    the verdict table over them as replicates. Runs judged by different gold labelers are never ranked together."""
    from .reporting.compare import compare_readable

    try:
        text, left_out = compare_readable(paths)
    except RecipeError as error:
        _fail(error)
    if text:
        typer.echo(text)
    if left_out:  # the runs that could be read are compared above; each left out says why, and exits 2
        _fail(RecipeError(left_out))


store_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The stage store: every finished stage, kept once by fingerprint, that any run directory links.",
)
app.add_typer(store_app, name="store")


@store_app.command("list")
def store_list(store: Path = STORE) -> None:
    """Every stored stage: its size, when it was built and last used, who built it and which runs link it."""
    from .runtime.store import StageStore
    from .runtime.store_view import entry_lines

    try:
        opened = StageStore.open(store)
        entries = opened.entries()
    except RecipeError as error:
        _fail(error)
    except OSError as error:
        _fail(_store_error(error))
    console.print(f"stage store {opened.root}: {len(entries)} entries, {_mib(sum(e.bytes for e in entries))}")
    for line in entry_lines(entries):
        console.print(line)


@store_app.command("prune")
def store_prune(
    unused_for_days: float = typer.Option(
        0.0, "--unused-for-days", min=0.0, help="Remove only entries not linked or used for this many days."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed, and remove nothing."),
    store: Path = STORE,
) -> None:
    """Remove the stored stages that no run directory links (never one that a run directory still links)."""
    from .runtime.store import StageStore

    try:
        opened = StageStore.open(store)
        removed = opened.prune(unused_for_days=unused_for_days, dry_run=dry_run)
        kept = opened.entries()
    except RecipeError as error:
        _fail(error)
    except OSError as error:
        _fail(_store_error(error))
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{verb} {len(removed)} entries ({_mib(sum(e.bytes for e in removed))}) that no run directory links; "
        f"{len(kept) - (len(removed) if dry_run else 0)} kept ({_mib(sum(e.bytes for e in kept if e.used_by))} "
        "linked by run directories)."
    )
    for entry in removed:
        console.print(f"  {entry.stage:<14} {entry.fingerprint[:12]}  {_mib(entry.bytes)}")


def _store_error(error: OSError) -> RecipeError:
    return RecipeError(
        f"stage store: {error.strerror or error} ({error.filename}). Fix: check that directory's permissions, "
        "or point RLHF_RECIPES_STORE (or --store) at a store of your own."
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _offline_unless_needed(recipe) -> None:
    """No network unless the recipe names something on the Hugging Face Hub (a model or a dataset)."""
    from .config.labelers import classifier_labelers
    from .labeling.hub_cache import uncached_hub_id  # reads the cache's files: imports no hub library

    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"  # TRL's trainers report their use to the hub otherwise
    local_model = recipe.model.name_or_path is None or Path(recipe.model.name_or_path).is_dir()
    hub_prompts = recipe.prompts is not None and recipe.prompts.hub_dataset is not None
    pairs = recipe.preferences.dataset
    hub_pairs = pairs is not None and not Path(pairs.source).exists()
    classifiers = classifier_labelers([recipe.labeler, recipe.gold_labeler])
    hub_labelers = any(uncached_hub_id(config.model) for config in classifiers)
    if local_model and not hub_prompts and not hub_pairs and not hub_labelers:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"


def check_force(stage: str | None, recipe) -> None:
    """A RecipeError, before anything runs, when --force names no stage of the recipe (or of its study's runs)."""
    from .config.loader import study_runs
    from .config.schema import Recipe
    from .run.pipeline import checked_force, plan

    runs = study_runs(recipe, recipe.model_dump(mode="json"))
    recipe = Recipe.model_validate(runs[0].data) if runs else recipe
    checked_force(stage, plan(recipe, Path("runs") / recipe.name))


def _quiet_libraries(debug: bool) -> None:
    """Library warnings and progress bars are for --debug; the run's own messages stay."""
    if debug:
        return
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("transformers", "trl", "datasets", "accelerate", "peft", "bitsandbytes"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
