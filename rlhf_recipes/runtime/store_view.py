"""`rlhf store list`: the stage store's entries as lines a person reads (paths are never wrapped)."""

import time

from .store import Entry


def age(seconds: float) -> str:
    """A duration as its largest whole unit: 40 s, 12 min, 5 h, 3 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:.0f} s"


def entry_lines(entries: list[Entry]) -> list[str]:
    """Per entry, least recently used first: stage, fingerprint, size, age, builder; then its users."""
    now, lines = time.time(), []
    for entry in entries:
        lines.append(
            f"{entry.stage:<14} {entry.fingerprint[:12]}  {entry.bytes / 2**20:>9,.1f} MiB  "
            f"built {age(now - entry.built_at)} ago by {entry.built_by}, last used {age(now - entry.last_used)} ago"
        )
        users = entry.used_by or ["nothing (`rlhf store prune` removes it)"]
        lines += [f"    linked by {user}" for user in users]
    return lines
