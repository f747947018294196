"""What a stage is doing right now, on the terminal, and what it cost once done.

The pipeline opens one `stage(...)` at a time. Inside it, the batched loops (`batches`) and the
trainers (`TrainingProgress`, added by stages.common.quiet) each show a bar named after the stage,
and the tokens a stage generates as its output are counted (`add_tokens`) for its tokens per second. Bars are drawn
only on a terminal and only by the main process; the counts are kept either way.
"""

from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

from .distributed import batch_starts, is_main


@dataclass
class _Stage:
    name: str = ""
    bars: object = None  # a rich Progress while a stage runs on a terminal, else None
    generated_tokens: int = 0
    counting: bool = True
    tasks: dict = field(default_factory=dict)


_current = _Stage()


@contextmanager
def stage(name: str, console=None):
    """Count and show the work of the stage `name` while the block runs; yields the stage's counters."""
    global _current
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars = None
    if console is not None and console.is_terminal and is_main():
        bars = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
    previous, _current = _current, _Stage(name, bars)
    reset_peak_memory()
    try:
        if bars is None:
            yield _current
        else:
            with bars:
                yield _current
    finally:
        _current = previous


def _advance(label: str, total: int, done: int) -> None:
    if _current.bars is None:
        return
    key = f"{_current.name} · {label}"
    if key not in _current.tasks or _current.bars.tasks[_current.tasks[key]].total != total:
        _current.tasks[key] = _current.bars.add_task(key, total=total)
    _current.bars.update(_current.tasks[key], completed=done)


def batches(label: str, total: int, batch_size: int, shared: bool = True):
    """This process's batch start offsets for `total` items (distributed.batch_starts, or all of them when
    the items are not `shared` among processes), with a bar."""
    starts = batch_starts(total, batch_size) if shared else range(0, total, batch_size)
    for number, start in enumerate(starts):
        _advance(label, len(starts), number)
        yield start
    _advance(label, len(starts), len(starts))


def add_tokens(count: int) -> None:
    if _current.counting:
        _current.generated_tokens += count


@contextmanager
def uncounted():
    """Generation inside the block is not the stage's own output (e.g. held-out curves during training)."""
    was, _current.counting = _current.counting, False
    try:
        yield
    finally:
        _current.counting = was


class TrainingProgress(TrainerCallback):
    """A bar of optimizer steps for a TRL trainer, named after the running stage."""

    def on_step_end(self, args, state, control, **kwargs):
        _advance("training steps", state.max_steps, state.global_step)


def reset_peak_memory() -> None:
    """Start measuring peak resident memory afresh (Linux: /proc/self/clear_refs); elsewhere a no-op."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mib() -> float | None:
    """Peak resident memory of this process since the last reset_peak_memory, in MiB (Linux only)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return round(int(line.split()[1]) / 1024, 1) if line else None
