"""The stage store: every finished stage kept once, by fingerprint, for any run directory to link.

A stage's fingerprint (stage.py) names exactly what it computes, whichever recipe asked for it, so the
store keys its entries by fingerprint alone: `<store>/stages/<fingerprint>/` holds the stage's directory
as the stage wrote it, plus `store.json` (which stage, who built it, when, and every file's size and
SHA-256). A run directory's `<stage>` is a symbolic link to its entry.

- **Where**: $RLHF_RECIPES_STORE (or `rlhf run --store PATH`), else `store/` in the tool's cache
  ($RLHF_RECIPES_CACHE, else $XDG_CACHE_HOME/rlhf-recipes, else ~/.cache/rlhf-recipes). Point it at a
  shared disk to share stages between people or machines of one kind.
- **Atomic**: an entry is moved into place whole (a rename inside the store), with `store.json` written
  before; a directory there without `store.json` is never linked.
- **Concurrent builders**: a builder holds `locks/<fingerprint>.lock` (flock, released when its process
  ends, even by a crash) while it builds; a second run that needs the same stage waits for it, then links
  what it built (or builds it itself if the first failed).
- **Damage**: every link checks the entry's files against `store.json`; an entry that fails is moved
  aside and rebuilt.
- **Who uses what**: each run directory that links an entry registers itself under `runs/`; `rlhf store
  list` shows, and `rlhf store prune` keeps, every entry that a registered run directory still links.
"""

import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RecipeError

STORE_VARIABLE = "RLHF_RECIPES_STORE"
MANIFEST = "store.json"


def default_store_root() -> Path:
    """$RLHF_RECIPES_STORE, else the `store` folder of the tool's cache."""
    from ..models.gguf_cache import cache_root

    return Path(os.environ[STORE_VARIABLE]).expanduser() if os.environ.get(STORE_VARIABLE) else cache_root() / "store"


@dataclass
class Entry:
    """One stored stage, as `rlhf store list` shows it."""

    fingerprint: str
    path: Path
    stage: str
    built_at: float
    built_by: str
    bytes: int
    last_used: float
    used_by: list[str] = field(default_factory=list)


class StageStore:
    """The stage store at `root` (see the module's docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser().absolute()

    @classmethod
    def open(cls, root: Path | None = None) -> "StageStore":
        """The store at `root` (default: default_store_root()), created if needed; a RecipeError naming the
        path and the fix when it cannot be written."""
        store = cls(root if root is not None else default_store_root())
        try:
            for folder in ("stages", "locks", "runs"):
                (store.root / folder).mkdir(parents=True, exist_ok=True)
            probe = store.root / "locks" / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            reason = error.strerror or str(error)
            raise RecipeError(
                f"stage store: cannot write to {store.root} ({reason}). Fix: point {STORE_VARIABLE} (or "
                "`rlhf run --store PATH`) at a writable directory."
            ) from error
        return store

    def entry_path(self, fingerprint: str) -> Path:
        return self.root / "stages" / fingerprint

    # --- reading -----------------------------------------------------------------------------------

    def find(self, fingerprint: str) -> Path | None:
        """The entry for `fingerprint` when it is there and whole; a damaged entry is moved aside (and so
        rebuilt by whoever needs it) and None returned."""
        entry = self.entry_path(fingerprint)
        if not entry.is_dir():
            return None
        problem = damage(entry)
        if problem is None:
            return entry
        self.discard(entry, reason=problem)
        return None

    def contains(self, path: Path) -> bool:
        """Is `path` (a run directory's stage, maybe a link) an entry of this store?"""
        return path.resolve().parent == (self.root / "stages").resolve()

    # --- writing -----------------------------------------------------------------------------------

    @contextmanager
    def building(self, fingerprint: str, stage: str, announce=None) -> Iterator[None]:
        """Hold the right to build `fingerprint` for the duration of the block; while another process
        holds it, wait (saying so through `announce`, once)."""
        import fcntl

        handle = open(self.root / "locks" / f"{fingerprint}.lock", "a+")  # noqa: SIM115 (held for the block)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                if announce is not None:
                    announce(f"{stage}: waiting for {holder}, which is building (or storing) the same stage")
                fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            yield
        finally:
            handle.close()

    def publish(self, directory: Path, fingerprint: str, stage: str, built_by: Path) -> Path:
        """Move the finished stage `directory` into the store as the entry for `fingerprint` (replacing an
        older entry of that fingerprint: a forced rebuild) and return the entry. Atomic: the entry appears
        whole or not at all. Across file systems the directory is copied first."""
        entry = self.entry_path(fingerprint)
        incoming = entry.with_name(f".{fingerprint}.incoming-{os.getpid()}")
        shutil.rmtree(incoming, ignore_errors=True)
        try:
            os.rename(directory, incoming)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            shutil.copytree(directory, incoming, symlinks=True)
            shutil.rmtree(directory)
        (incoming / MANIFEST).unlink(missing_ok=True)  # a copied entry's record: described anew
        manifest = {
            "stage": stage,
            "fingerprint": fingerprint,
            "built_by": str(built_by.absolute()),
            "built_at": time.time(),
            "files": manifest_files(incoming),
        }
        (incoming / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if entry.exists():
            self.discard(entry, reason=None)
        os.rename(incoming, entry)
        return entry

    def link(self, entry: Path, target: Path) -> None:
        """Make `target` (a run directory's stage) a link to `entry`, register the run directory as a user
        of the store, and note when the entry was last used."""
        os.symlink(entry, target)
        self.register(target.parent)
        os.utime(entry / MANIFEST)

    def register(self, run_dir: Path) -> None:
        """Remember `run_dir` as a user of the store, so that pruning keeps what it links."""
        path = str(run_dir.absolute())
        record = self.root / "runs" / f"{hashlib.sha256(path.encode()).hexdigest()[:24]}.json"
        if not record.is_file():
            temporary = record.with_name(f".{record.name}.{os.getpid()}")
            temporary.write_text(json.dumps({"run_dir": path}) + "\n")
            os.replace(temporary, record)

    def discard(self, entry: Path, reason: str | None) -> None:
        """Remove an entry: moved aside first (one rename, so no one links a half-removed entry)."""
        aside = entry.with_name(f".{entry.name}.discarded-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(entry, aside)
        except FileNotFoundError:
            return
        if reason is not None:
            with (self.root / "damaged.log").open("a") as log:
                log.write(f"{time.ctime()} {entry.name}: {reason}\n")
        shutil.rmtree(aside, ignore_errors=True)

    # --- listing and pruning -----------------------------------------------------------------------

    def run_dirs(self) -> list[Path]:
        """The registered run directories that still exist (a record of one that is gone is dropped)."""
        found = []
        for record in sorted((self.root / "runs").glob("*.json")):
            try:
                run_dir = Path(json.loads(record.read_text())["run_dir"])
            except (OSError, ValueError, KeyError):
                continue
            if run_dir.is_dir():
                found.append(run_dir)
            else:
                record.unlink(missing_ok=True)
        return found

    def users(self) -> dict[str, list[str]]:
        """Entry fingerprint -> the run directories whose stages link it (found by reading the links, so a
        link removed or replaced since is not counted)."""
        stages = (self.root / "stages").resolve()
        used: dict[str, list[str]] = {}
        for run_dir in self.run_dirs():
            for child in run_dir.iterdir():
                if child.is_symlink():
                    target = Path(os.path.realpath(child))
                    if target.parent == stages:
                        used.setdefault(target.name, []).append(str(child.parent))
        return {key: sorted(set(value)) for key, value in used.items()}

    def entries(self) -> list[Entry]:
        """Every whole entry, oldest use first, with its users."""
        users = self.users()
        found = []
        for entry in sorted((self.root / "stages").iterdir()):
            manifest = read_manifest(entry)
            if entry.name.startswith(".") or manifest is None:
                continue
            found.append(
                Entry(
                    fingerprint=entry.name,
                    path=entry,
                    stage=manifest.get("stage", "?"),
                    built_at=manifest.get("built_at", 0.0),
                    built_by=manifest.get("built_by", "?"),
                    bytes=sum(size for size, _ in manifest.get("files", {}).values()),
                    last_used=(entry / MANIFEST).stat().st_mtime,
                    used_by=users.get(entry.name, []),
                )
            )
        return sorted(found, key=lambda e: e.last_used)

    def prune(self, unused_for_days: float = 0.0, dry_run: bool = False) -> list[Entry]:
        """Remove every entry that no registered run directory links and that was not used in the last
        `unused_for_days`; also leftovers of interrupted publishing. Returns what was (or would be) removed."""
        now, removed = time.time(), []
        for entry in self.entries():
            if not entry.used_by and now - entry.last_used >= unused_for_days * 86400:
                removed.append(entry)
                if not dry_run:
                    with self.building(entry.fingerprint, entry.stage):  # never under a builder's feet
                        self.discard(entry.path, reason=None)
        if not dry_run:
            for leftover in (self.root / "stages").glob(".*"):
                if now - leftover.stat().st_mtime > 86400:  # an interrupted publish, not one in progress
                    shutil.rmtree(leftover, ignore_errors=True)
        return removed


def manifest_files(directory: Path) -> dict[str, list]:
    """Every file of a stage directory: relative path -> [size, SHA-256]."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and path != directory / MANIFEST:
            files[str(path.relative_to(directory))] = [path.stat().st_size, file_sha256(path)]
    return files


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def read_manifest(entry: Path) -> dict | None:
    try:
        return json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def damage(entry: Path) -> str | None:
    """What is wrong with an entry (a file missing, of another size or content; no readable store.json),
    or None when it is whole."""
    manifest = read_manifest(entry)
    if manifest is None or not isinstance(manifest.get("files"), dict):
        return "store.json is missing or unreadable"
    for name, (size, sha) in manifest["files"].items():
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not {size}"
        if _checked_sha256(path) != sha:
            return f"{name} does not have the content it was stored with"
    return None


_verified: dict[tuple[str, int, int], str] = {}


def _checked_sha256(path: Path) -> str:
    """A file's SHA-256, computed once per process for the same path, size and modification time."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        _verified[key] = file_sha256(path)
    return _verified[key]
