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

import contextlib
import errno
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RecipeError
from ..models.gguf_cache import cache_root
from ..models.gguf_cache import file_digest as file_sha256

STORE_VARIABLE = "RLHF_RECIPES_STORE"
MANIFEST = "store.json"


def default_store_root() -> Path:
    """$RLHF_RECIPES_STORE, else the `store` folder of the tool's cache."""
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

    def lock(self, fingerprint: str) -> "FingerprintLock":
        """The lock of one fingerprint: whoever holds it builds, stores, links or prunes that entry."""
        return FingerprintLock(self.root / "locks" / f"{fingerprint}.lock")

    @contextmanager
    def building(self, fingerprint: str, stage: str, announce=None, poll_seconds: float = 2.0) -> Iterator[None]:
        """Hold `fingerprint`'s lock for the duration of the block; while another process holds it, wait
        (saying so through `announce`, once)."""
        lock = self.lock(fingerprint)
        try:
            lock.wait(lambda holder: announce and announce(waiting_message(stage, holder)), poll_seconds)
            yield
        finally:
            lock.release()

    def publish(self, directory: Path, fingerprint: str, stage: str, built_by: Path) -> Path:
        """Move the finished stage `directory` into the store as the entry for `fingerprint` (replacing an
        older entry of that fingerprint: a forced rebuild) and return the entry. The caller holds the
        fingerprint's lock. `directory` is described (store.json) where it is, then renamed into place in
        one step, so an interruption leaves it either where it was or whole in the store; across file
        systems it is copied to a hidden name in the store first and removed only once the entry is in place."""
        entry = self.entry_path(fingerprint)
        (directory / MANIFEST).unlink(missing_ok=True)  # a copied entry's record: described anew
        manifest = {
            "stage": stage,
            "fingerprint": fingerprint,
            "built_by": str(built_by.absolute()),
            "built_at": time.time(),
            "files": manifest_files(directory),
        }
        write_file_atomically(directory / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        replaced = None
        if entry.exists():  # a forced rebuild: the old entry goes aside first, and is removed last
            replaced = entry.with_name(f".{fingerprint}.discarded-{os.getpid()}-{time.time_ns()}")
            os.rename(entry, replaced)
        try:
            os.rename(directory, entry)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            incoming = entry.with_name(f".{fingerprint}.incoming-{os.getpid()}")
            shutil.rmtree(incoming, ignore_errors=True)
            shutil.copytree(directory, incoming, symlinks=True)
            os.rename(incoming, entry)
            shutil.rmtree(directory)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        return entry

    def link(self, entry: Path, target: Path) -> None:
        """Make `target` (a run directory's stage) a link to `entry`, register the run directory as a user
        of the store, and note when the entry was last used."""
        os.symlink(entry, target)
        self.register(target.parent, entry.name)
        with contextlib.suppress(PermissionError):  # another user's entry in a shared store: use not noted
            os.utime(entry / MANIFEST)

    def register(self, run_dir: Path, fingerprint: str | None = None) -> None:
        """Remember `run_dir` as a user of the store (and `fingerprint` as one it links), so that pruning
        keeps what it links. The record lists what the run linked, for pruning from a machine that cannot
        see the run directory; where the run directory can be seen, its links decide."""
        path = str(run_dir.absolute())
        record = self.root / "runs" / f"{hashlib.sha256(path.encode()).hexdigest()[:24]}.json"
        known = read_json(record) or {}
        linked = set(known.get("linked", []))
        if known.get("run_dir") == path and (fingerprint is None or fingerprint in linked):
            return
        linked |= {fingerprint} if fingerprint else set()
        data = {"run_dir": path, "host": platform.node(), "linked": sorted(linked)}
        write_file_atomically(record, json.dumps(data) + "\n")

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

    def users(self) -> dict[str, list[str]]:
        """Entry fingerprint -> the run directories that link it. A run directory that can be seen is read
        (its links decide, so a link removed or replaced since is not counted); the record of one that was
        deleted (its parent folder is there, it is not) is dropped; one that cannot be seen from here
        (another machine's disk) counts by what its record says it linked."""
        stages = (self.root / "stages").resolve()
        used: dict[str, set[str]] = {}
        for record in sorted((self.root / "runs").glob("*.json")):
            data = read_json(record)
            if not data or "run_dir" not in data:
                continue
            run_dir = Path(data["run_dir"])
            if run_dir.is_dir():
                for child in run_dir.iterdir():
                    target = Path(os.path.realpath(child)) if child.is_symlink() else None
                    if target is not None and target.parent == stages:
                        used.setdefault(target.name, set()).add(str(run_dir))
            elif run_dir.parent.is_dir():
                record.unlink(missing_ok=True)
            else:
                unseen = f"{run_dir} (on {data.get('host', '?')}, not seen from here)"
                for fingerprint in data.get("linked", []):
                    used.setdefault(fingerprint, set()).add(unseen)
        return {key: sorted(value) for key, value in used.items()}

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
        """Remove every entry that no run directory links and that was not used in the last
        `unused_for_days`; also leftovers of interrupted publishing older than a day. Each entry is checked
        again under its lock just before it goes (a run may have linked it since), and one whose lock
        another process holds is kept. Returns what was (or would be) removed."""
        now, removed = time.time(), []
        for entry in self.entries():
            if entry.used_by or now - entry.last_used < unused_for_days * 86400:
                continue
            if dry_run:
                removed.append(entry)
                continue
            lock = self.lock(entry.fingerprint)
            if not lock.try_acquire():
                continue
            try:
                if entry.fingerprint in self.users() or (entry.path / MANIFEST).stat().st_mtime != entry.last_used:
                    continue  # linked or used since the listing
                self.discard(entry.path, reason=None)
                removed.append(entry)
            except FileNotFoundError:
                continue
            finally:
                lock.release()
        if not dry_run:
            self._sweep_leftovers(now)
        return removed

    def _sweep_leftovers(self, now: float) -> None:
        """Remove what an interrupted publish or discard left (hidden names), once a day old and unlocked."""
        for leftover in (self.root / "stages").glob(".*"):
            lock = self.lock(leftover.name[1:].split(".")[0])
            if not lock.try_acquire():
                continue
            try:
                if now - leftover.stat().st_mtime > 86400:
                    shutil.rmtree(leftover, ignore_errors=True)
            except FileNotFoundError:
                pass
            finally:
                lock.release()


class FingerprintLock:
    """An flock on one file: released when released, or when its process ends (even by a crash)."""

    def __init__(self, path: Path):
        self.path, self.handle = path, None

    def try_acquire(self) -> bool:
        import fcntl

        if self.handle is None:
            try:
                self.handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                self.writable = True
            except PermissionError:  # another user's lock file in a shared store: read access locks too
                self.handle, self.writable = os.open(self.path, os.O_RDONLY), False
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if self.writable:
            os.ftruncate(self.handle, 0)
            os.pwrite(self.handle, f"pid {os.getpid()}".encode(), 0)
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def wait(self, on_wait=None, poll_seconds: float = 2.0) -> None:
        """Acquire, polling; `on_wait(holder)` is called once if the lock is held elsewhere."""
        told = False
        while not self.try_acquire():
            if not told and on_wait is not None:
                on_wait(self.holder())
                told = True
            time.sleep(poll_seconds)

    def release(self) -> None:
        if self.handle is not None:
            os.close(self.handle)  # closing releases the flock
            self.handle = None


def waiting_message(stage: str, holder: str) -> str:
    return f"{stage}: waiting for {holder}, which is building (or storing) the same stage"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_file_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, temporary.with_name(path.name))


def manifest_files(directory: Path) -> dict[str, list]:
    """Every file of a stage directory: relative path -> [size, SHA-256]."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and path != directory / MANIFEST:
            files[str(path.relative_to(directory))] = [path.stat().st_size, file_sha256(path)]
    return files


def read_manifest(entry: Path) -> dict | None:
    return read_json(entry / MANIFEST)


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
