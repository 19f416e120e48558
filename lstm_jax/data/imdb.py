"""IMDB reviews (Maas et al. 2011, ACL) as the records tfds ``imdb_reviews/plain_text`` gives.

Two sources, one record format (``{"text": str, "label": int}``; ``label`` 0 = neg, 1 = pos,
-1 for the ``unsupervised`` split, exactly as tfds' builder):

* **archive** (offline, no TensorFlow): a local ``aclImdb_v1.tar.gz`` of the original layout,
  streamed once with :mod:`tarfile` (mode ``"r|gz"``). Chosen by ``path``, else the environment
  variable ``LSTM_JAX_IMDB``, else ``../shared/data/aclImdb_v1.tar.gz`` relative to the project
  root (the directory holding the ``lstm_jax`` package), whatever the working directory.
  Records follow tfds' builder: the text is the file's bytes stripped of surrounding
  ASCII whitespace, decoded as UTF-8; the example key is the member path
  (``aclImdb/train/pos/0_9.txt``); and by default (``order="tfds"``) records come in tfds'
  order, which sorts examples by ``md5(split_name + key)`` (``tfds.core.hashing.Hasher`` with the
  split name as salt, used by its shuffler when writing). Each review's *movie* comes from the
  archive's ``aclImdb/{train,test}/urls_{pos,neg,unsup}.txt``: line ``i`` is the IMDB URL
  (``http://www.imdb.com/title/tt0406816/usercomments``) of review ``{pos,neg,unsup}/i_*.txt``,
  kept as the title number (406816). Up to 30 reviews share a movie, and the train and test
  splits use disjoint movies (Maas et al. 2011) but for one (406816: 2 train, 23 test reviews;
  ``experiments/imdb_duplicates.py``); a review without a urls line gets -1.
* **tfds** (online users): ``tfds.data_source("imdb_reviews/plain_text")`` from a built
  array_record data set in a tfds ``data_dir`` (reading needs no TensorFlow; building does:
  ``pip install 'lstm_jax[tf]'``).

Split sizes are verified: train 25,000, test 25,000, unsupervised 50,000 (12,500 per class).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lstm_jax.errors import UserError, check_choice

URL = "http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ENV_VAR = "LSTM_JAX_IMDB"
#: The checkout that holds the ``lstm_jax`` package; the default archive path is relative to it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RELATIVE = Path("..") / "shared" / "data" / "aclImdb_v1.tar.gz"
DEFAULT_ARCHIVE = (PROJECT_ROOT / DEFAULT_RELATIVE).resolve()
SPLITS = ("train", "test", "unsupervised")
SPLIT_SIZES = {"train": 25_000, "test": 25_000, "unsupervised": 50_000}
CLASS_NAMES = ("neg", "pos")
ORDERS = ("tfds", "archive")
TFDS_NAME = "imdb_reviews/plain_text"

# member path -> (split, label); same directories as tfds' builder reads.
_MEMBER = re.compile(r"^aclImdb/(train|test)/(neg|pos|unsup)/([^/]+)$")
# urls file of a review directory: line i is the IMDB URL of review i_<rating>.txt.
_URLS = re.compile(r"^aclImdb/(train|test)/urls_(neg|pos|unsup)\.txt$")
_TITLE = re.compile(r"/title/tt(\d+)")
_INDEX = re.compile(r"^(\d+)_")
_LABEL = {"neg": 0, "pos": 1, "unsup": -1}
_LAYOUT = ("aclImdb/train/{pos,neg,unsup}/<id>_<rating>.txt and "
           "aclImdb/test/{pos,neg}/<id>_<rating>.txt")


@dataclasses.dataclass(frozen=True)
class ImdbSplit:
    """One split: ``texts[i]``, ``labels[i]`` (int64 (N,)), ``keys[i]`` (archive path or index),
    ``movies[i]`` (int64 (N,): the IMDB title number of review ``i``'s movie, -1 if unknown; all
    -1 when not given, e.g. from tfds or an archive without urls files)."""

    name: str
    texts: list[str]
    labels: np.ndarray
    keys: list[str]
    movies: np.ndarray | None = None

    def __post_init__(self):
        if self.movies is None:
            object.__setattr__(self, "movies", np.full(len(self.texts), -1, np.int64))

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        """The tfds record: ``{"text": str, "label": int}``."""
        return {"text": self.texts[i], "label": int(self.labels[i])}

    def class_counts(self) -> dict[str, int]:
        return {name: int((self.labels == k).sum()) for k, name in
                [(0, "neg"), (1, "pos"), (-1, "unlabelled")] if (self.labels == k).any()}


def resolve_archive(path: str | os.PathLike | None = None) -> Path:
    """The archive to read: ``path``, else ``$LSTM_JAX_IMDB``, else :data:`DEFAULT_ARCHIVE`
    (``../shared/data/aclImdb_v1.tar.gz`` relative to :data:`PROJECT_ROOT`, not to the working
    directory); it must exist. The error names the path it looked at and where it came from."""
    if path is not None:
        origin, p = "--data", Path(path)
    elif os.environ.get(ENV_VAR):
        origin, p = f"${ENV_VAR}", Path(os.environ[ENV_VAR])
    else:
        origin = (f"default: {DEFAULT_RELATIVE} relative to the project root {PROJECT_ROOT}; "
                  f"${ENV_VAR} is not set")
        p = DEFAULT_ARCHIVE
    p = p.expanduser()
    if not p.is_file():
        what = "is a directory" if p.is_dir() else "does not exist"
        raise UserError(
            f"IMDB archive {str(p.absolute())!r} ({origin}) {what}; expected aclImdb_v1.tar.gz "
            f"(download it from {URL}) and pass its path with --data or {ENV_VAR}=/path/to/"
            f"aclImdb_v1.tar.gz")
    return p


def tfds_order_key(split: str, key: str) -> int:
    """tfds' shuffle key of an example: ``md5(split_name + key)`` as a 128-bit integer."""
    return int(hashlib.md5(split.encode() + key.encode()).hexdigest(), 16)


def _split_of(folder: str, cls: str) -> str | None:
    if cls == "unsup":
        return "unsupervised" if folder == "train" else None
    return folder


def iter_archive(path: Path, splits: Iterable[str] = SPLITS, progress=None,
                 urls: dict[str, np.ndarray] | None = None):
    """Yield ``(split, key, text)`` for every review of ``splits``, in archive order (one pass).

    Streams the gzip and the tar (no seeking, nothing extracted to disk); the gzip stream is
    read to its end, so a truncated or corrupt archive is an error, not a short split.

    ``progress``: an optional callable called once per tar member (for a progress bar).
    ``urls``: an optional dict, filled with ``{review directory: (n,) int64 title numbers}``
    (``"aclImdb/train/pos"``: line ``i`` of ``urls_pos.txt``, -1 where a line names no title)
    for the urls files of ``splits``. The original archive stores them after the reviews, so the
    movies are complete only once the generator is exhausted (:func:`movie_ids` maps keys).
    """
    wanted = set(splits)
    try:
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz, \
                tarfile.open(fileobj=gz, mode="r|") as tar:
            yield from _members(tar, path, wanted, progress, urls)
            # tarfile stops quietly at a truncated header; draining the gzip stream to its end
            # raises EOFError on a truncated file and checks the CRC.
            while gz.read(1 << 20):
                pass
    except (tarfile.ReadError, gzip.BadGzipFile, zlib.error, EOFError) as e:
        raise UserError(
            f"{path} is not a readable gzip-compressed tar archive ({type(e).__name__}: {e}); "
            f"expected aclImdb_v1.tar.gz from {URL}") from None


def _members(tar, path, wanted, progress, urls):
    for member in tar:
        if progress is not None:
            progress()
        if not member.isfile():
            continue
        key = os.path.normpath(member.name)
        m = _MEMBER.match(key)
        if not m:
            u = _URLS.match(key)
            if u and urls is not None and _split_of(u.group(1), u.group(2)) in wanted:
                raw = tar.extractfile(member).read().decode("utf-8", errors="replace")
                urls[f"aclImdb/{u.group(1)}/{u.group(2)}"] = _titles(raw)
            continue
        split = _split_of(m.group(1), m.group(2))
        if split not in wanted:
            continue
        raw = tar.extractfile(member).read().strip()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: member {key} is not UTF-8 text ({e.reason})") from None
        yield split, key, text


def _titles(text: str) -> np.ndarray:
    """``(lines,)`` int64: the IMDB title number of each line of a urls file, -1 if none."""
    found = (_TITLE.search(line) for line in text.splitlines())
    return np.asarray([int(m.group(1)) if m else -1 for m in found], np.int64)


def movie_ids(keys: Iterable[str], urls: dict[str, np.ndarray]) -> np.ndarray:
    """``(N,)`` int64 movie (IMDB title number) of each review key (``aclImdb/train/pos/7_9.txt``
    → line 7 of ``aclImdb/train/urls_pos.txt``, from :func:`iter_archive`'s ``urls``); -1 for a
    review whose urls file or line is missing."""
    out = []
    for key in keys:
        folder, name = key.rsplit("/", 1)
        titles, m = urls.get(folder), _INDEX.match(name)
        i = int(m.group(1)) if m else -1
        out.append(int(titles[i]) if titles is not None and 0 <= i < len(titles) else -1)
    return np.asarray(out, np.int64)


def read_archive(path: str | os.PathLike | None = None, splits: Iterable[str] = SPLITS, *,
                 order: str = "tfds", expected_sizes: dict[str, int] | None = SPLIT_SIZES,
                 progress: bool = False) -> dict[str, ImdbSplit]:
    """Read ``splits`` of an ``aclImdb_v1.tar.gz`` in one streaming pass.

    ``expected_sizes``: split → number of reviews to require (default: the real data set's;
    ``None`` only requires each split to be non-empty, for small test archives). A wrong layout
    or size raises :class:`UserError` naming what was expected and what was found. Each split's
    ``movies`` come from the archive's urls files (-1 where they are missing).
    """
    splits = tuple(dict.fromkeys(splits))
    for s in splits:
        check_choice("split", s, SPLITS)
    check_choice("order", order, ORDERS)
    path = resolve_archive(path)
    found: dict[str, list[tuple[str, str]]] = {s: [] for s in splits}
    urls: dict[str, np.ndarray] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = 100_016 if expected_sizes == SPLIT_SIZES else None
        bar = tqdm(total=total, desc=f"reading {path.name}", unit=" files", mininterval=0.5)
    try:
        for split, key, text in iter_archive(path, splits, bar.update if bar is not None else None,
                                             urls):
            found[split].append((key, text))
    finally:
        if bar is not None:
            bar.close()
    result = {}
    for s in splits:
        items = found[s]
        if not items:
            where = "aclImdb/train/unsup/" if s == "unsupervised" else f"aclImdb/{s}/{{pos,neg}}/"
            raise UserError(
                f"{path} has no reviews for split {s!r} under {where}; expected the original "
                f"aclImdb_v1.tar.gz layout {_LAYOUT} (from {URL})")
        if order == "tfds":
            items.sort(key=lambda kt, s=s: tfds_order_key(s, kt[0]))
        keys = [k for k, _ in items]
        labels = np.asarray([_LABEL[k.split("/")[2]] for k in keys], np.int64)
        split = ImdbSplit(s, [t for _, t in items], labels, keys, movie_ids(keys, urls))
        _check_size(split, expected_sizes, str(path))
        result[s] = split
    return result


def _check_size(split: ImdbSplit, expected_sizes, where: str) -> None:
    if not expected_sizes or split.name not in expected_sizes:
        return
    want = expected_sizes[split.name]
    counts = split.class_counts()
    per_class = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    if len(split) != want or (split.name != "unsupervised" and
                              any(counts.get(c, 0) != want // 2 for c in CLASS_NAMES)):
        detail = "" if split.name == "unsupervised" else f" ({want // 2:,} per class)"
        raise UserError(
            f"{where}: split {split.name!r} has {len(split):,} reviews ({per_class}); expected "
            f"{want:,}{detail} as in the original aclImdb_v1.tar.gz")


def read_tfds(splits: Iterable[str] = SPLITS, *, data_dir: str | os.PathLike | None = None,
              download: bool = False, expected_sizes: dict[str, int] | None = SPLIT_SIZES,
              progress: bool = False) -> dict[str, ImdbSplit]:
    """Read ``splits`` with ``tfds.data_source("imdb_reviews/plain_text")`` (array_record).

    Reading a built data set needs no TensorFlow. If none is built in ``data_dir`` and
    ``download`` is set, tfds downloads and builds it, which needs TensorFlow
    (``pip install 'lstm_jax[tf]'``). Keys are the record indices (``"0"``, ``"1"``, ...).
    """
    splits = tuple(dict.fromkeys(splits))
    for s in splits:
        check_choice("split", s, SPLITS)
    import tensorflow_datasets as tfds

    result = {}
    for s in splits:
        ds = _tfds_source(tfds, s, data_dir, download)
        n = len(ds)
        it = range(n)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"tfds {s}", unit=" reviews", mininterval=0.5)
        texts, labels = [], np.empty(n, np.int64)
        for i in it:
            rec = ds[i]
            text = rec["text"]
            texts.append(text.decode("utf-8") if isinstance(text, bytes) else str(text))
            labels[i] = int(rec["label"])
        split = ImdbSplit(s, texts, labels, [str(i) for i in range(n)])
        _check_size(split, expected_sizes, f"tfds {TFDS_NAME} in {data_dir or 'default data_dir'}")
        result[s] = split
    return result


def _tfds_source(tfds, split: str, data_dir, download: bool):
    try:
        return tfds.data_source(TFDS_NAME, split=split, data_dir=data_dir, download=False)
    except Exception as first:  # not built (tfds raises NotImplementedError), or broken
        if not download:
            raise UserError(
                f"no built {TFDS_NAME} (array_record) in tfds data_dir "
                f"{str(data_dir) if data_dir else '(tfds default)'} ({type(first).__name__}); "
                f"build it with download=True / --download (needs TensorFlow: pip install "
                f"'lstm_jax[tf]'), or read the archive offline with --data or {ENV_VAR}") from None
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise UserError(
            f"building {TFDS_NAME} through tfds needs TensorFlow, which is not installed: "
            f"pip install 'lstm_jax[tf]' (or read aclImdb_v1.tar.gz offline with --data or "
            f"{ENV_VAR})") from None
    try:
        return tfds.data_source(TFDS_NAME, split=split, data_dir=data_dir, download=True)
    except ImportError as e:
        raise UserError(f"building {TFDS_NAME} failed: missing module {e.name!r} "
                        f"(pip install 'lstm_jax[tf]')") from None


def read_imdb(splits: Iterable[str] = SPLITS, *, source: str = "archive", path=None,
              data_dir=None, download: bool = False, order: str = "tfds",
              expected_sizes: dict[str, int] | None = SPLIT_SIZES,
              progress: bool = False) -> dict[str, ImdbSplit]:
    """``read_archive`` or ``read_tfds`` by ``source`` (``"archive"`` or ``"tfds"``)."""
    check_choice("source", source, ("archive", "tfds"))
    if source == "archive":
        return read_archive(path, splits, order=order, expected_sizes=expected_sizes,
                            progress=progress)
    return read_tfds(splits, data_dir=data_dir, download=download,
                     expected_sizes=expected_sizes, progress=progress)
