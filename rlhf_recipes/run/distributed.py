"""Several processes, one run: the facts the pipeline needs about a launch by `accelerate launch`.

Every process runs the whole pipeline. TRL's trainers split their batches across processes by
themselves (accelerate); the loops the tool owns (sampling, scoring, log-probabilities) split their
batches here, round-robin, and gather the results in order, so every process holds every result
and a batch's numbers do not depend on how many processes there are. Only the main process
writes to the run directory. With one process, every function here is free.
"""

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def start(cpu: bool) -> None:
    """Join the process group that `accelerate launch` set up (gloo on CPUs), before any stage runs."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState(cpu=cpu)


def barrier() -> None:
    if world_size() > 1:
        import torch.distributed

        torch.distributed.barrier()


def batch_starts(total: int, batch_size: int) -> range:
    """The start offsets of this process's batches: batch b goes to process b mod world_size."""
    return range(rank() * batch_size, total, world_size() * batch_size)


def gather_batches(local: dict[int, list]) -> list:
    """Every process's {batch start: results} merged, concatenated in batch order, on every process."""
    if world_size() > 1:
        import torch.distributed

        parts: list[dict[int, list] | None] = [None] * world_size()
        torch.distributed.all_gather_object(parts, local)
        local = {start: results for part in parts for start, results in part.items()}
    return [result for start in sorted(local) for result in local[start]]


def broadcast(value):
    """The main process's `value`, on every process."""
    if world_size() == 1:
        return value
    import torch.distributed

    holder = [value]
    torch.distributed.broadcast_object_list(holder, src=0)
    return holder[0]
