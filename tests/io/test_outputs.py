"""Writing outputs safely: only regular files replaced, atomic files, the run folder's lock and staging."""

import os
import signal

import pytest

from desim.errors import DesimError
from desim.io import outputs
from desim.io.outputs import AtomicFile, Lock, RunFolder, check_writable, uninterrupted, write_atomically


def listing(folder):
    return sorted(path.name for path in folder.iterdir())


# -- single files ----------------------------------------------------------------------------------


def test_an_atomic_file_replaces_a_regular_file_only_on_commit(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("before")
    first, second = AtomicFile(target, "trace"), AtomicFile(target, "trace")
    assert first.temporary != second.temporary  # unique: two writers never share a temporary file
    first.file.write(b"after")
    assert target.read_text() == "before"  # nothing reaches the target before the commit
    second.discard()
    assert first.commit() == target and target.read_text() == "after"
    assert listing(tmp_path) == ["t.json"]


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "plot.png"
    target.write_text("before")

    def fail(file):
        file.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(DesimError, match="cannot write the plot: No space left on device"):
        write_atomically(target, fail, "plot")
    assert target.read_text() == "before" and listing(tmp_path) == ["plot.png"]


@pytest.mark.parametrize("kind", ["symlink to a file", "dangling symlink", "directory", "fifo"])
def test_only_regular_files_are_replaced(tmp_path, kind):
    target = tmp_path / "t"
    if kind == "symlink to a file":
        (tmp_path / "real").write_text("kept")
        target.symlink_to(tmp_path / "real")
    elif kind == "dangling symlink":
        target.symlink_to(tmp_path / "nowhere")
    elif kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    expected = {"directory": "a directory", "fifo": "a FIFO"}.get(kind, "a symbolic link")
    with pytest.raises(DesimError, match=f"refusing to replace {expected} with the trace"):
        check_writable(target, "trace")
    with pytest.raises(DesimError, match="refusing to replace"):
        write_atomically(target, lambda file: file.write(b"x"), "trace")
    assert not (tmp_path / "nowhere").exists()  # not even created through the dangling link
    assert sorted(listing(tmp_path)) == sorted(["t", *(["real"] if kind == "symlink to a file" else [])])


def test_a_device_is_never_replaced():
    with pytest.raises(DesimError, match="refusing to replace a device with the drawing"):
        check_writable(os.devnull, "drawing")


def test_a_path_under_a_file_names_the_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DesimError, match=f"cannot write the trace: {tmp_path / 'file'} is a file, not a folder"):
        check_writable(tmp_path / "file" / "deeper" / "t.json", "trace")


def test_missing_folders_are_made(tmp_path):
    target = tmp_path / "a" / "b" / "t.json"
    check_writable(target, "trace")
    assert write_atomically(target, lambda file: file.write(b"x"), "trace").read_bytes() == b"x"


# -- the lock --------------------------------------------------------------------------------------


def test_a_lock_is_held_once_and_its_file_goes_with_it(tmp_path):
    path, guarded = tmp_path / ".run.lock", tmp_path / "run"
    with Lock(path, guarded):
        with pytest.raises(DesimError, match="another desim run is writing these reports now"):
            Lock(path, guarded)
        assert path.exists()
    assert not path.exists()
    Lock(path, guarded).release()  # free again


def test_a_lock_file_removed_as_it_is_taken_is_taken_afresh(tmp_path, monkeypatch):
    """A holder releasing (removing the file) just as another opens it: the taker must not lock the orphan."""
    path = tmp_path / ".run.lock"
    path.write_text("")
    real_flock, locked = outputs.fcntl.flock, []

    def flock(fd, operation):
        if not locked:
            path.unlink()  # the previous holder's release, between our open and our flock
        locked.append(os.fstat(fd).st_ino)
        real_flock(fd, operation)

    monkeypatch.setattr(outputs.fcntl, "flock", flock)
    lock = Lock(path, tmp_path / "run")
    assert len(locked) == 2 and locked[1] == path.stat().st_ino  # retried, and holds the file at the path
    lock.release()


# -- the run folder --------------------------------------------------------------------------------


def earlier(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("COMPUTE_REPORT.csv", "SUMMARY.json", "notes.txt"):
        (folder / name).write_text(f"earlier {name}")
    return folder


def test_reports_stay_staged_until_published(tmp_path):
    folder = earlier(tmp_path)
    with RunFolder(tmp_path, "run", ["COMPUTE_REPORT.csv", "SUMMARY.json"]) as run:
        run.path("COMPUTE_REPORT.csv").write_text("new rows")
        assert (folder / "COMPUTE_REPORT.csv").read_text() == "earlier COMPUTE_REPORT.csv"
        assert run.staging.parent == tmp_path and run.staging.name.startswith(".run.staging-")
        run.publish()
        # Published: the new rows are in place, the old summary (describing other rows) is gone.
        assert (folder / "COMPUTE_REPORT.csv").read_text() == "new rows"
        assert listing(folder) == ["COMPUTE_REPORT.csv", "notes.txt"]
        run.path("SUMMARY.json").write_text("new summary")
    assert (folder / "SUMMARY.json").read_text() == "new summary"
    assert listing(tmp_path) == ["run"]  # staging folder and lock file gone


def test_a_run_that_fails_before_publishing_changes_nothing(tmp_path):
    folder = earlier(tmp_path)
    with pytest.raises(KeyboardInterrupt), RunFolder(tmp_path, "run", []) as run:
        run.path("COMPUTE_REPORT.csv").write_text("new rows")
        raise KeyboardInterrupt
    assert (folder / "COMPUTE_REPORT.csv").read_text() == "earlier COMPUTE_REPORT.csv"
    assert (folder / "SUMMARY.json").exists() and listing(tmp_path) == ["run"]


def test_a_run_that_fails_after_publishing_keeps_what_it_finished(tmp_path):
    folder = earlier(tmp_path)
    with pytest.raises(RuntimeError), RunFolder(tmp_path, "run", []) as run:
        run.path("COMPUTE_REPORT.csv").write_text("first layer")
        run.publish()
        run.path("trace.json.gz").write_text("trace of the first layer")
        run.path(".trace.json.gz.x.tmp").write_text("a temporary file")
        raise RuntimeError
    assert listing(folder) == ["COMPUTE_REPORT.csv", "notes.txt", "trace.json.gz"]
    assert listing(tmp_path) == ["run"]


def staging_left_by_a_killed_run(folder):
    folder.mkdir()
    (folder / outputs.STAGING_MARKER).touch()
    (folder / "COMPUTE_REPORT.csv").write_text("half")


def test_a_killed_runs_staging_folder_is_cleared_by_the_next(tmp_path):
    staging_left_by_a_killed_run(tmp_path / ".run.staging-abc123")
    staging_left_by_a_killed_run(tmp_path / ".other.staging-abc123")  # another run name's: not ours to clear
    with RunFolder(tmp_path, "run", []):
        pass
    assert listing(tmp_path) == [".other.staging-abc123", "run"]


def test_only_a_folder_marked_as_staging_is_cleared(tmp_path):
    """Once, a run named '.x.staging-keep' had its finished reports removed by the next run named 'x'."""
    reports = tmp_path / ".x.staging-keep"
    reports.mkdir()
    (reports / "COMPUTE_REPORT.csv").write_text("a finished run's")
    with RunFolder(tmp_path, "x", []):
        pass
    assert (reports / "COMPUTE_REPORT.csv").read_text() == "a finished run's"


def test_a_run_name_with_glob_characters_clears_only_its_own_leftovers(tmp_path):
    staging_left_by_a_killed_run(tmp_path / ".r[1].staging-x")
    staging_left_by_a_killed_run(tmp_path / ".r1.staging-x")  # what '.r[1].staging-*' would match as a pattern
    with RunFolder(tmp_path, "r[1]", []):
        pass
    assert listing(tmp_path) == [".r1.staging-x", "r[1]"]


def test_an_earlier_runs_plots_and_trace_go_when_the_new_reports_arrive(tmp_path):
    folder = earlier(tmp_path)
    for name in ("cycles_by_cause.png", "occupancy_layer3.png", "trace.json.gz"):
        (folder / name).write_text("earlier run's")
    owned = ("COMPUTE_REPORT.csv", "SUMMARY.json", "cycles_by_cause.png", "occupancy_layer*.png", "trace.json.gz")
    with RunFolder(tmp_path, "run", ["COMPUTE_REPORT.csv", "SUMMARY.json"], owned) as run:
        run.path("COMPUTE_REPORT.csv").write_text("new rows")
        assert len(listing(folder)) == 6  # nothing goes before the first layer is done
        run.publish()
    assert listing(folder) == ["COMPUTE_REPORT.csv", "notes.txt"]  # notes.txt is not desim's: it stays


def test_a_failed_run_takes_back_the_folders_it_made(tmp_path):
    with pytest.raises(KeyboardInterrupt), RunFolder(tmp_path / "new" / "deeper", "run", []):
        raise KeyboardInterrupt
    assert listing(tmp_path) == []


def test_the_report_folder_and_its_reports_are_checked_before_anything_is_made(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run").symlink_to(tmp_path)
    with pytest.raises(DesimError, match="refusing to write reports into something that is not a folder"):
        RunFolder(tmp_path / "out", "run", []).check()
    (tmp_path / "out" / "run").unlink()
    (tmp_path / "out" / "run").mkdir()
    (tmp_path / "out" / "run" / "occupancy_layer3.png").mkdir()
    with pytest.raises(DesimError, match="refusing to replace a directory with the report"):
        RunFolder(tmp_path / "out", "run", ["occupancy_layer*.png"]).check()
    assert listing(tmp_path / "out") == ["run"]


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_an_uninterrupted_block_takes_effect_as_it_ends(number):
    """Not between two of a layer's files: once they are all written."""

    class Stopped(Exception):
        pass

    def stop(signum, frame):
        raise Stopped(signum)

    before = signal.signal(number, stop)
    written = []
    try:
        with pytest.raises(Stopped), uninterrupted():
            signal.raise_signal(number)  # its handler runs now, and must not stop the block
            written.append("the rest of the layer's files")
        assert written == ["the rest of the layer's files"]
        assert signal.getsignal(number) is stop  # the handler is back
    finally:
        signal.signal(number, before)
