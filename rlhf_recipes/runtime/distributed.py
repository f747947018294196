"""Several processes, one run: the facts the pipeline needs about a launch by `accelerate launch`,
from accelerate's PartialState.

Every process runs the whole pipeline. TRL's trainers split their batches across processes by
themselves (accelerate); the loops the tool owns (sampling, scoring, log-probabilities) split their
batches here, round-robin, and gather the results in order, so every process holds every result
and a batch's numbers do not depend on how many processes there are. Only the main process
writes to the run directory. With one process, every function here is free.
"""


def start(cpu: bool) -> None:
    """Join the process group that `accelerate launch` set up (gloo on CPUs), before anything else asks
    about processes: PartialState keeps the settings of its first construction."""
    from accelerate import PartialState

    PartialState(cpu=cpu)


def finish() -> None:
    """Leave the process group before the interpreter exits: a gloo group left to the exit handlers can
    abort a process that finished its work ("terminate called without an active exception")."""
    _state().destroy_process_group()


def _state():
    from accelerate import PartialState

    return PartialState()


def world_size() -> int:
    return _state().num_processes


def rank() -> int:
    return _state().process_index


def is_main() -> bool:
    return _state().is_main_process


def barrier() -> None:
    _state().wait_for_everyone()


def batch_starts(total: int, batch_size: int) -> range:
    """The start offsets of this process's batches: batch b goes to process b mod world_size."""
    return range(rank() * batch_size, total, world_size() * batch_size)


def gather_batches(local: dict[int, list]) -> list:
    """Every process's {batch start: results} merged, concatenated in batch order, on every process."""
    from accelerate.utils import gather_object

    merged = {start: results for part in gather_object([local]) for start, results in part.items()}
    return [result for start in sorted(merged) for result in merged[start]]


def broadcast(value):
    """The main process's `value`, on every process."""
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]
