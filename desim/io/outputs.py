"""Writing outputs safely: a run's report folder with its lock, and single files (traces, pictures).

Whatever paths the user gives:

- Only regular files, or paths that do not exist yet, are ever replaced. A symbolic link, a
  directory, a device or a FIFO in the way is refused with a :class:`~desim.errors.DesimError`,
  and a run checks every path it will write before time starts.
- Every file is written under a unique temporary name beside its target and renamed into place;
  the temporary file is removed if anything fails, so no target is ever half-written.
- A run holds an OS lock (``flock``) on ``OUTDIR/.<run_name>.lock`` while it writes (the file is
  removed when it is done), so a second run into the same report folder fails at once rather than
  interleaving its rows with the first's.
- A run writes its reports into a private staging folder beside the report folder
  (``OUTDIR/.<run_name>.staging-XXXXXXXX``) and moves them into ``OUTDIR/<run_name>/`` once its
  first layer has finished (:meth:`RunFolder.publish`): until then the earlier run's reports stay
  as they were. From then on each finished layer is appended in place, so an interrupted run
  keeps every layer it finished; ``SUMMARY.json`` and any plots arrive last, when the run ends.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from desim.errors import DesimError

SUMMARY = "SUMMARY.json"
"""The file a finished run writes last: its presence says the reports beside it are complete."""
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""What :func:`uninterrupted` holds back: Ctrl-C, and the polite request to stop that ``kill`` sends."""
STAGING_MARKER = ".desim-staging"
"""The file that marks a staging folder as desim's: only such a folder is ever cleared as a leftover."""


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM) back until the block is done; they take effect as it ends.

    A layer's rows go to several files; a run stopped between two of them would leave the files
    disagreeing on which layers finished. While the block runs, those signals' handlers only note
    that they came (blocking them in the kernel is not enough: one that arrived just before the
    block could still have its handler run inside it); as the block ends the handlers come back
    and the first signal noted is raised again, so whatever would have happened (a
    KeyboardInterrupt, say) happens then. Only the main thread receives signals; elsewhere the
    block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: arrived.append(number)) for number in HELD_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        if arrived:
            signal.raise_signal(arrived[0])


def reason(error: OSError) -> str:
    """What went wrong with a file operation, in words."""
    return error.strerror or str(error)


@contextmanager
def _undone_on_failure(undo: Callable[[], None], failed: str, file: Path) -> Iterator[None]:
    """Run the block; if it fails in any way, ``undo()`` first. An OSError becomes ``failed: reason``."""
    try:
        yield
    except OSError as error:
        undo()
        raise DesimError(f"{failed}: {reason(error)}", file=file) from None
    except BaseException:
        undo()
        raise


def _what_is(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_writable(path: str | Path, what: str) -> None:
    """Raise DesimError unless ``path`` is a regular file or does not exist yet (and its folder is a folder).

    Symbolic links are refused even when they point at a regular file: replacing one would put a
    file where the link was, and writing through one would reach a file the user did not name.
    """
    path = Path(path)
    blocker = next((folder for folder in path.parents if os.path.lexists(folder)), None)
    if blocker is not None and not blocker.is_dir():
        raise DesimError(f"cannot write the {what}: {blocker} is a file, not a folder", file=path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise DesimError(f"cannot write the {what}: {reason(error)}", file=path) from None
    if not stat.S_ISREG(mode):
        raise DesimError(
            f"refusing to replace {_what_is(mode)} with the {what}; name a regular file or a new path", file=path
        )


def make_folder(path: Path, what: str) -> list[Path]:
    """Create ``path`` (and its parents) as a folder, or check that it is one (a link to one is fine).

    Returns the folders it created, outermost first, so that a run that fails can take them back.
    """
    missing = [folder for folder in (path, *path.parents) if not os.path.lexists(folder)][::-1]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DesimError(f"cannot create the {what}: a file is in the way", file=path) from None
    except OSError as error:
        raise DesimError(f"cannot create the {what}: {reason(error)}", file=path) from None
    if not path.is_dir():
        raise DesimError(f"cannot use the {what}: it is not a folder", file=path)
    return missing


def remove_if_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (as ``make_folder`` returned them), innermost first, as far as each is empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): neither it nor its parents are ours to remove


class AtomicFile:
    """A new file at ``path``, written under a unique temporary name and renamed into place on commit.

    The target is checked when the file is opened and again just before the rename; if the
    writer discards it (or the commit fails), the temporary file is removed.
    """

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        check_writable(self.path, what)
        self._made = make_folder(self.path.parent, f"folder for the {what}")
        with _undone_on_failure(lambda: remove_if_empty(self._made), f"cannot write the {what}", self.path):
            # A short temporary name: the target's own name may already be as long as a name can be.
            fd, name = tempfile.mkstemp(prefix=".desim-", suffix=".tmp", dir=self.path.parent)
        self.temporary = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        with self.failing():
            os.chmod(fd, _new_file_mode())  # mkstemp makes it private; reports are not

    def failing(self) -> AbstractContextManager[None]:
        """A block whose failure drops the temporary file (an OSError becomes a DesimError)."""
        return _undone_on_failure(self.discard, f"cannot write the {self.what}", self.path)

    def commit(self) -> Path:
        """Close the file and move it over the target; return the target."""
        with self.failing():
            self.file.close()
            check_writable(self.path, self.what)
            os.replace(self.temporary, self.path)
        return self.path

    def discard(self) -> None:
        """Drop what was written; the target stays as it was, and folders made for it go again."""
        with suppress(OSError):  # the data is being thrown away anyway
            self.file.close()
        self.temporary.unlink(missing_ok=True)
        remove_if_empty(self._made)


def _new_file_mode() -> int:
    """The mode ``open`` would give a new file: 0o666 less the process's umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None], what: str) -> Path:
    """Write a whole file at ``path`` through ``write(file)``, atomically; return the path."""
    target = AtomicFile(path, what)
    with target.failing():
        write(target.file)
    return target.commit()


class RunFolder:
    """Where one run's reports go: ``outdir/name``, locked and staged. Use as a context manager.

    Args:
        outdir: the folder that holds report folders (``-p``); created if missing.
        name: the run name, the report folder's name.
        outputs: names (or glob patterns) of the files this run writes into the report folder;
            each that exists already must be a regular file.
        owned: names (or glob patterns) of every file a desim run may write there: whatever of
            these an earlier run left, and this run does not write, goes when this run's reports
            arrive, so that the folder never mixes two runs' files. Other files are left alone.
    """

    def __init__(self, outdir: str | Path, name: str, outputs: Iterable[str], owned: Iterable[str] = ()) -> None:
        self.outdir = Path(outdir)
        self.name = name
        self.destination = self.outdir / name
        self.outputs = tuple(outputs)
        self.owned = tuple(owned)
        self.published = False
        self.staging: Path | None = None
        self._lock: Lock | None = None
        self._made: list[Path] = []

    def check(self) -> None:
        """Raise DesimError if the report folder or a file the run will replace there is not plain."""
        where = self.destination
        if where.is_symlink() or (where.exists() and not where.is_dir()):
            raise DesimError("refusing to write reports into something that is not a folder", file=where)
        for path in self._existing(self.outputs):
            check_writable(path, "report")

    def _existing(self, patterns: tuple[str, ...]) -> list[Path]:
        """What the report folder holds under ``patterns`` (names, or glob patterns)."""
        where = self.destination
        if not where.is_dir():
            return []
        found = []
        for pattern in patterns:
            wild = any(ch in pattern for ch in "*?[")
            found += where.glob(pattern) if wild else [where / pattern] if os.path.lexists(where / pattern) else []
        return found

    def __enter__(self) -> RunFolder:
        self.check()
        self._made = make_folder(self.outdir, "output folder")
        with _undone_on_failure(self._undo, "cannot prepare the reports", self.outdir):
            self._lock = Lock(self.outdir / f".{self.name}.lock", self.destination)
            self.check()  # again, now that no other run can be changing it
            for leftover in self.outdir.glob(f".{glob_escape(self.name)}.staging-*"):
                # Only what a killed run of ours left: a folder holding our marker file.
                if leftover.is_dir() and not leftover.is_symlink() and (leftover / STAGING_MARKER).is_file():
                    shutil.rmtree(leftover, ignore_errors=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.name}.staging-", dir=self.outdir))
            (self.staging / STAGING_MARKER).touch()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if self.published or kind is None:
                self.publish()
        finally:
            self._undo()

    def _undo(self) -> None:
        """Remove the staging folder and the lock; if nothing was published, the folders made too."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if not self.published:
            remove_if_empty(self._made)

    def path(self, name: str = "") -> Path:
        """Where the run writes report ``name`` (in the staging folder until it is published); the
        staging folder itself without a name."""
        assert self.staging is not None, "use the RunFolder as a context manager"
        return self.staging / name

    def publish(self) -> None:
        """Move every finished file in the staging folder into the report folder, ``SUMMARY.json`` last.

        The first call also removes the earlier run's ``SUMMARY.json``: from here on the folder
        holds this run's reports, which are complete only when a new summary arrives.
        """
        assert self.staging is not None, "use the RunFolder as a context manager"
        make_folder(self.destination, "report folder")
        # Files, and the files in folders one level down (one per compute unit), SUMMARY.json last.
        ready = sorted(
            (
                file
                for entry in self.staging.iterdir()
                if not entry.name.startswith(".")
                for file in (sorted(entry.iterdir()) if entry.is_dir() else [entry])
            ),
            key=lambda p: p.name == SUMMARY,
        )
        if not self.published:
            # The earlier run's summary first (it would describe other reports), then whatever else of
            # its files this run will not replace (plots, a trace): the folder holds one run's files.
            arriving = {str(path.relative_to(self.staging)) for path in ready}
            earlier = sorted(self._existing((SUMMARY, *self.owned)), key=lambda p: p.name != SUMMARY)
            for old in earlier:
                name = str(old.relative_to(self.destination))
                if name not in arriving - {SUMMARY} and old.is_file() and not old.is_symlink():
                    old.unlink()
                    if old.parent != self.destination:
                        remove_if_empty([old.parent])
            self.published = True
        for staged in ready:
            target = self.destination / staged.relative_to(self.staging)
            if target.parent != self.destination:
                if target.parent.is_symlink():
                    raise DesimError("refusing to write reports through a link", file=target.parent)
                make_folder(target.parent, "report folder")
            check_writable(target, "report")
            try:
                os.replace(staged, target)
            except OSError as error:
                raise DesimError(f"cannot move the report into place: {reason(error)}", file=target) from None


class Lock:
    """An exclusive OS lock (``flock``) held through the lock file ``path`` while ``guarded`` is written.

    The file is removed on release. Whoever takes the lock checks that the file it locked is still
    the one at ``path`` (a releasing holder may have just removed it), so two holders can never
    lock two different files of the same name.

    Raises:
        DesimError: another process holds it (a run writing the same reports), or it cannot be made.
    """

    def __init__(self, path: Path, guarded: Path) -> None:
        self.path = path
        for _ in range(100):  # another holder would have to release 100 times in between
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DesimError(
                    "another desim run is writing these reports now; wait for it to finish or give another -p",
                    file=guarded,
                ) from None
            except OSError as error:
                os.close(fd)
                raise DesimError(f"cannot lock the reports: {reason(error)}", file=path) from None
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(current, os.fstat(fd)):
                self._fd: int | None = fd
                return
            os.close(fd)  # the holder before us removed this file as we opened it: take the new one
        raise DesimError("cannot lock the reports: the lock file keeps changing", file=path)

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise DesimError(f"cannot create the lock file: {reason(error)}", file=self.path) from None

    def release(self) -> None:
        """Remove the lock file, then let go (in that order: see the class docstring)."""
        if self._fd is None:
            return
        with suppress(OSError):  # a lock file left behind is harmless
            self.path.unlink()
        os.close(self._fd)  # closing the descriptor releases the lock
        self._fd = None

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def relative_to(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` when inside it (so reports stay movable), else absolute."""
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())
