"""Safe output: atomic writes, an output lock, and spreadsheet-safe CSV.

Atomic write
    The data goes to a temporary file in the target's own directory (same file
    system), is flushed and ``fsync``-ed, then ``os.replace``-d over the target
    (atomic on POSIX and Windows). A run killed at any point leaves either the
    previous file or the new one, never a half-written file; at worst a hidden
    ``.<name>.*.tmp`` file stays behind (removed by the next successful write).

Lock
    :func:`output_lock` holds ``<target>.lock`` (an OS file lock via ``filelock``)
    for the duration of a run; a second concurrent run fails at once with
    :class:`~churnpredict.errors.LockedError` naming the lock file.

Formula neutralization
    A *text* cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return would be run as a formula by spreadsheet programs, so it is written with
    a leading single quote (``'=1+1``), shown as text. Decision: only text cells are
    neutralized. Numeric columns (``risk``, ``value_at_risk``, ``rank``...) are
    written as numbers, so a genuine negative number stays ``-0.5`` (a spreadsheet
    reads it as a number, which runs nothing); a *text* cell holding ``-0.5`` is
    quoted like any other text. The call list's numeric columns are never negative.

Row alignment
    Python's ``csv`` writer (and so ``DataFrame.to_csv``) quotes a field holding the
    line terminator's characters only; with ``"\n"`` line ends a *bare* carriage return
    goes out unquoted, and every CSV reader splits the row there (the next line could
    then start with a live formula). :func:`to_csv_text` therefore quotes every text
    field that holds a CR or LF, keeping the text as it was (RFC 4180). A text cell
    longer than a spreadsheet cell holds (32,767 characters) is cut to that length and
    marked, with a warning that counts the cells cut.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from churnpredict.errors import LockedError, OutputError

log = logging.getLogger(__name__)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}
MAX_CELL_CHARS = 32_767  # the most a spreadsheet cell holds (Excel, LibreOffice)
_TRUNCATED = " [cut: {n} characters]"
# a bare CR is rewritten as LF + this private-use mark before pandas writes (LF forces
# quoting), and the pair is turned back into the CR afterwards; see _quote_carriage_returns
_CR_MARK = "\ue000\ue001\ue002"


# ----------------------------------------------------------------- atomic writes
def _fsync_dir(directory: Path) -> None:
    """Flush the directory entry (best effort; not supported everywhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _cleanup_stale_temps(path: Path) -> None:
    for p in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


def _target_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(
    path: Path | str, *, binary: bool = True, encoding: str = "utf-8"
) -> Iterator[io.IOBase]:
    """Open a temporary file that replaces ``path`` only when the block ends cleanly.

    Parameters
    ----------
    path : Path or str
        The target file; its directory is created if needed.
    binary : bool
        Yield a binary file (default) or a text file.
    encoding : str
        Text encoding when ``binary`` is false.

    Yields
    ------
    file object
        Write to it; on an exception the temporary file is removed and ``path`` is
        left untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
    tmp_path = Path(tmp)
    # mkstemp makes 0600 files; give the result the mode a plain open() would
    # (or keep the mode of the file being replaced), so a shared list stays readable
    os.chmod(tmp_path, _target_mode(path))
    try:
        mode = "wb" if binary else "w"
        kwargs = {} if binary else {"encoding": encoding, "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(err, OSError) and err.errno in _ENVIRONMENT_ERRNOS:
            raise OutputError(
                f"cannot write {path}: {err.strerror or err}; the previous file is intact"
            ) from None
        raise
    _fsync_dir(path.parent)
    _cleanup_stale_temps(path)


def atomic_write_set(files: Sequence[tuple[Path | str, bytes]]) -> list[Path]:
    """Write several files as one set: all are staged before any replaces its target.

    Every file is first written in full to a temporary file beside its target and
    ``fsync``-ed; only then are they renamed, the *first* file last (e.g. the full call
    list after its per-owner files). A run killed while writing leaves every target as
    it was; only a kill between the renames (microseconds) can leave some targets new
    and some old, and then the first file is still the previous one, so a reader who
    trusts the first file's date never pairs it with newer parts.

    Returns
    -------
    list of Path
        The targets, in the order given.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in files:
            target = Path(target)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(
                    prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
                )
            except OSError as err:
                raise OutputError(f"cannot write {target}: {err.strerror or err}") from None
            staged.append((Path(tmp), target))
            os.chmod(tmp, _target_mode(target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, target in staged[1:] + staged[:1]:
            os.replace(tmp, target)
    except BaseException as err:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(err, OSError) and err.errno in _ENVIRONMENT_ERRNOS:
            raise OutputError(
                f"cannot write {staged[-1][1] if staged else 'the outputs'}: "
                f"{err.strerror or err}; the previous files are intact"
            ) from None
        raise
    for folder in {t.parent for _, t in staged}:
        _fsync_dir(folder)
    for _, target in staged:
        _cleanup_stale_temps(target)
    return [t for _, t in staged]


def csv_bytes(
    df: pd.DataFrame,
    *,
    sep: str = ",",
    bom: bool = True,
    columns: Sequence[str] | None = None,
    neutralize: bool = True,
) -> bytes:
    """Return the bytes :func:`atomic_write_csv` would write (for :func:`atomic_write_set`)."""
    text = to_csv_text(df, sep=sep, columns=columns, neutralize=neutralize)
    return ((BOM if bom else "") + text).encode("utf-8")


def check_output_path(path: Path | str, option: str = "output") -> Path:
    """Check, before any work, that ``path`` can become a file; create nothing.

    Raises
    ------
    OutputError
        ``path`` is a folder, lies under a file, or its nearest existing folder cannot
        be written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder: give a file name")
    for parent in path.parents:
        if not parent.exists():
            continue
        if not parent.is_dir():
            raise OutputError(f"{option} {path} cannot be written: {parent} is a file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {path} cannot be written: folder {parent} is read-only")
        break
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_writer(path, binary=True) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(
    path: Path | str, text: str, *, encoding: str = "utf-8", bom: bool = False
) -> Path:
    """Write ``text`` to ``path`` atomically (optionally with a UTF-8 BOM)."""
    data = ((BOM if bom else "") + text).encode(encoding)
    return atomic_write_bytes(path, data)


# ------------------------------------------------------------------------- CSV
def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with text cells that a spreadsheet would run as a formula quoted.

    Only text (object / string dtype) columns are touched; numbers stay numbers.
    """
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            continue
        mask = s.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES))
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            s = s.astype(object)
            s[mask] = "'" + s[mask].astype(str)
            out[col] = s
    return out


def to_csv_text(
    df: pd.DataFrame,
    *,
    sep: str = ",",
    columns: Sequence[str] | None = None,
    neutralize: bool = True,
) -> str:
    """Render ``df`` as CSV text (no BOM): stable column order, formulas neutralized."""
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise KeyError(f"columns missing from the table: {missing}")
        df = df[list(columns)]
    if neutralize:
        df = neutralize_formulas(df)
    df = _cap_cells(df)
    df, marked = _mark_carriage_returns(df)
    buf = io.StringIO()
    df.to_csv(buf, sep=sep, index=False, lineterminator="\n")
    text = buf.getvalue()
    return text.replace("\n" + _CR_MARK, "\r") if marked else text


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [
        c
        for c in df.columns
        if not (
            pd.api.types.is_numeric_dtype(df[c])
            or pd.api.types.is_bool_dtype(df[c])
            or pd.api.types.is_datetime64_any_dtype(df[c])
        )
    ]


def _cap_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Cut text cells longer than :data:`MAX_CELL_CHARS` (marked, with a warning)."""
    out = None
    cut = 0
    for col in _text_columns(df):
        s = df[col]
        long = s.map(lambda v: isinstance(v, str) and len(v) > MAX_CELL_CHARS)
        long = long.fillna(False).astype(bool)
        if not long.any():
            continue
        out = df.copy() if out is None else out

        def shorten(v: str) -> str:
            mark = _TRUNCATED.format(n=f"{len(v):,}")
            return v[: MAX_CELL_CHARS - len(mark)] + mark

        s = s.astype(object)
        s[long] = s[long].map(shorten)
        out[col] = s
        cut += int(long.sum())
    if out is None:
        return df
    log.warning(
        "%d text cell(s) longer than %d characters (a spreadsheet cell's limit) were cut "
        "and marked '[cut: N characters]'",
        cut,
        MAX_CELL_CHARS,
    )
    return out


def _mark_carriage_returns(df: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Rewrite each CR in text cells as LF + a mark, so that pandas quotes the field.

    Returns the frame and whether any cell was rewritten (then the caller turns
    ``"\n" + _CR_MARK`` back into ``"\r"`` in the written text).
    """
    out = None
    for col in _text_columns(df):
        s = df[col]
        has_cr = s.map(lambda v: isinstance(v, str) and "\r" in v).fillna(False).astype(bool)
        if not has_cr.any():
            continue
        if s.map(lambda v: isinstance(v, str) and _CR_MARK in v).fillna(False).any():
            raise ValueError("text holds the CSV writer's private marker; cannot write it")
        out = df.copy() if out is None else out
        s = s.astype(object)
        s[has_cr] = s[has_cr].str.replace("\r", "\n" + _CR_MARK, regex=False)
        out[col] = s
    return (df, False) if out is None else (out, True)


def atomic_write_csv(
    df: pd.DataFrame,
    path: Path | str,
    *,
    sep: str = ",",
    bom: bool = True,
    columns: Sequence[str] | None = None,
    neutralize: bool = True,
) -> Path:
    """Write ``df`` as CSV to ``path`` atomically.

    Parameters
    ----------
    df : DataFrame
        The table.
    path : Path or str
        The target file.
    sep : str
        Field separator (default ``,``; e.g. ``;`` for some locales).
    bom : bool
        Start the file with a UTF-8 byte-order mark so spreadsheets detect UTF-8.
    columns : sequence of str, optional
        Columns to write, in this order (default: the frame's order).
    neutralize : bool
        Quote text cells starting with a formula character (see module docstring).
    """
    text = to_csv_text(df, sep=sep, columns=columns, neutralize=neutralize)
    return atomic_write_text(path, text, bom=bom)


def sniff_separator(header: str) -> str:
    """Guess the separator of a CSV header line among ``,``, ``;``, tab and ``|``."""
    counts = {s: header.count(s) for s in (",", ";", "\t", "|")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else ","


def read_csv_any(path: Path | str, **kwargs) -> pd.DataFrame:
    """Read a CSV written by :func:`atomic_write_csv` (any separator, BOM or not).

    Text cells quoted by formula neutralization get their leading quote removed.
    """
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = fh.readline()
    sep = sniff_separator(header)
    df = pd.read_csv(path, sep=sep, encoding="utf-8-sig", **kwargs)
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        mask = (
            s.map(
                lambda v: (
                    isinstance(v, str)
                    and len(v) > 1
                    and v[0] == "'"
                    and v[1:].startswith(FORMULA_PREFIXES)
                )
            )
            .fillna(False)
            .astype(bool)
        )
        if mask.any():
            s = s.astype(object)
            s[mask] = s[mask].str.slice(1)
            df[col] = s
    return df


# ------------------------------------------------------------------------- lock
def lock_path(path: Path | str) -> Path:
    """Return the lock file guarding ``path``: a hidden ``.<name>.lock`` beside it.

    It stays after a run (removing it would let two runs lock different files), but
    hidden, so account teams browsing the list folder see only lists.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path: Path | str, *, timeout: float = 0.0) -> Iterator[Path]:
    """Hold the output lock of ``path`` for the duration of the block.

    Parameters
    ----------
    path : Path or str
        The output (file or folder) to guard; the lock is ``<path>.lock``.
    timeout : float
        Seconds to wait for the lock; 0 (default) fails fast.

    Raises
    ------
    LockedError
        When another run (process or thread) holds the lock.
    """
    lp = lock_path(path)
    lp.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lp), timeout=timeout, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(
            f"Another churnpredict run is writing {path} (lock file {lp} is held by a "
            "running process). Wait for it to finish. The lock is the operating system's: "
            "it is released when that process ends, even if killed, so do not delete the "
            "lock file (that would let two runs write at once)."
        ) from None
    try:
        yield lp
    finally:
        lock.release()
