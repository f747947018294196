"""Models that an earlier run builds: a recipe may start from another run's output (runs/<name>/sft) or label
with it (runs/<name>/reward_model), and when that run has not been made yet, the fix is to run its recipe."""

from pathlib import Path


def unbuilt_run(path: Path) -> str | None:
    """What to say about a missing `path` that lies in a run directory runs/<name>/ of a recipe
    recipes/<name>.yaml (relative to the current directory) that has not been run there, or not finished:
    the command that builds it. None for any other path. The message names the run, not `path`, so that
    every setting that reads from the same missing run gets the same one."""
    for run_dir in path.expanduser().parents:
        if run_dir.parent.name != "runs":
            continue
        recipe = Path("recipes") / f"{run_dir.name}.yaml"
        if not recipe.is_file() or (run_dir.exists() and not (run_dir / "run.json").is_file()):
            return None  # no recipe of that name, or a directory that is not a run
        command = f"rlhf run {recipe}"
        if run_dir.resolve() != (Path("runs") / run_dir.name).resolve():
            command += f" --output-dir {run_dir}"
        state = "has not finished there" if run_dir.exists() else "has not been run yet"
        return f"'{run_dir}' is the run directory of {recipe}, which {state}. Fix: run `{command}` first"
    return None
