"""Results are files: atomic JSON/JSONL writes and output-directory checks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from lstm_jax.errors import UserError


def to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__") and not isinstance(obj, str):
        return to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else (1e308 if obj > 0 else -1e308)
    return obj


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    return _atomic_write(path, text, "w")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """:func:`atomic_write_text` for bytes (e.g. an ``.npz`` built in memory)."""
    return _atomic_write(path, data, "wb")


def _atomic_write(path: str | os.PathLike, data: str | bytes, mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj) -> Path:
    """Atomically write ``obj`` as indented JSON (NumPy/JAX arrays become lists)."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def read_json(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist (expected a results file written by lstm-jax)")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror})") from None


def check_out_path(path: str | os.PathLike, field: str = "--out") -> None:
    """Refuse an empty path and one that is not valid UTF-8 (before anything prints it)."""
    if isinstance(path, str) and not path.strip():
        raise UserError(f"{field} is empty; give an output directory")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{field}={str(path)!r} is not valid UTF-8; use another name") from None
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # e.g. a name longer than the filesystem allows
        shown = f"{str(path)[:80]!r}{'…' if len(str(path)) > 80 else ''}"
        raise UserError(f"{field}={shown} cannot be used ({e.strerror})") from None


def ensure_out_dir(path: str | os.PathLike, field: str = "--out") -> Path:
    """Create the output directory; a clear error when the path is an existing file."""
    check_out_path(path, field)
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"{field}={str(path)!r} is a file; an output directory is needed")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{field}={str(path)[:80]!r}{'…' if len(str(path)) > 80 else ''} cannot be "
                        f"created ({e.strerror})") from None
    return path


def lock_holder(directory: Path) -> int | None:
    """The PID holding :func:`run_lock` on ``directory`` now (-1 if it wrote none yet), or None
    when nobody holds it. The check is a shared non-blocking ``flock``, released at once; a run
    that starts in that instant is refused as "in use" and can simply be started again."""
    path = Path(directory) / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.read(fd, 32).decode("utf-8", "replace").strip()
        return int(text) if text.isdigit() else -1
    else:
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(directory: Path, field: str = "--out"):
    """Hold an exclusive lock on ``directory`` (``directory/.lock``, with the holder's PID) for the
    block, so two processes never write one run; a second one gets a :class:`UserError` naming
    the holder. The lock is the kernel's (``flock``): it goes away with the process, even after
    ``kill -9``."""
    with try_run_lock(directory, field) as holder:
        if holder is not None:
            raise UserError(f"{field}={str(directory)!r} is in use by another lstm-jax process "
                            f"(PID {holder}); wait for it to finish or choose another {field}")
        yield


@contextlib.contextmanager
def try_run_lock(directory: Path, field: str = "--out", *, wait=None):
    """:func:`run_lock` without the error: yields None when this process now holds the lock, or
    the holder's PID (a string, "unknown" if it wrote none yet) when another process does, so a
    caller can pass the directory by (``lstm-jax compare`` run in several processes does).

    With ``wait`` (a callable), a held lock is waited for instead: ``wait(holder)`` is called
    once, the process blocks until the holder lets go, and None is yielded."""
    path = Path(directory) / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"{field}={str(directory)!r}: cannot create its lock file ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("utf-8", "replace").strip() or "unknown"
        if wait is None:
            os.close(fd)
            yield holder
            return
        wait(holder)
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder's descriptor is closed
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield None
    finally:
        os.close(fd)  # closing the descriptor releases the lock
