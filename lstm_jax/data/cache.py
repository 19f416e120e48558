"""On-disk cache of prepared arrays: content fingerprints, a cache directory, atomic ``.npz``.

The cache directory is ``cache_dir`` if given, else ``$LSTM_JAX_CACHE``, else
``~/.cache/lstm_jax``. Entries are keyed by a content hash of the source (the archive's sha256:
size + mtime alone would miss an in-place edit) and the tokeniser's settings; a stale entry is
never read, it simply has another name. Delete the directory to reclaim space.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from lstm_jax.errors import UserError

CACHE_ENV = "LSTM_JAX_CACHE"
_SHA_MEMO: dict[tuple, str] = {}


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory (created on first write, not here)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "lstm_jax"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes.

    Memoised per process on (path, inode, size, mtime, ctime): any write or ``utime`` changes
    ctime, so an in-place edit that restores size and mtime is still re-hashed.
    """
    path = Path(path)
    st = path.stat()
    memo = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if memo not in _SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
        _SHA_MEMO[memo] = h.hexdigest()
    return _SHA_MEMO[memo]


def save_npz(path: Path, **arrays: np.ndarray) -> Path:
    """Write an uncompressed ``.npz`` atomically (temp file in the same directory + rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cache directory {str(path.parent)!r} cannot be created ({e.strerror}); "
                        f"set {CACHE_ENV} or --cache-dir to a writable directory") from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache entry is not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry, or ``None`` if it is missing or unreadable (then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None


def join_strings(items) -> np.ndarray:
    """A list of strings without newlines → one uint8 array (UTF-8, newline-separated)."""
    return np.frombuffer("\n".join(items).encode("utf-8"), np.uint8)


def split_strings(blob: np.ndarray) -> list[str]:
    text = blob.tobytes().decode("utf-8")
    return text.split("\n") if text else []
