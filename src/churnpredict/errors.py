"""Errors a user can act on, each mapped to a process exit status.

The CLI catches :class:`ChurnPredictError` and prints its message (no traceback);
anything else is an internal failure and exits with status 1.
"""

from __future__ import annotations

from collections.abc import Sequence


class ChurnPredictError(Exception):
    """Base class: an expected failure with a message meant for a person."""

    exit_code = 1


class UsageError(ChurnPredictError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2


class ConfigError(ChurnPredictError):
    """The config file is missing, unreadable or has a wrong key or value (exit 2)."""

    exit_code = 2


class DataError(ChurnPredictError):
    """Input data breaks the data contract (exit 2).

    Parameters
    ----------
    message : str
        What is wrong, in one sentence.
    file : str, optional
        The file (or table) the problem is in.
    column : str, optional
        The column the problem is in.
    examples : sequence of str, optional
        Up to five example rows, already rendered.
    expected : str, optional
        What was expected instead.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        examples: Sequence[str] = (),
        expected: str | None = None,
    ) -> None:
        self.file = file
        self.column = column
        self.examples = list(examples)[:5]
        self.expected = expected
        parts = [message]
        if file:
            parts.append(f"file: {file}")
        if column:
            parts.append(f"column: {column}")
        if expected:
            parts.append(f"expected: {expected}")
        if self.examples:
            parts.append("examples:\n  " + "\n  ".join(self.examples))
        super().__init__("\n".join(parts))


class OutputError(ChurnPredictError):
    """An output cannot be written: path under a file, read-only or full disk (exit 2).

    The previous output is left as it was (writes are atomic).
    """

    exit_code = 2


class ModelNotFoundError(ChurnPredictError):
    """No usable model (e.g. no champion yet) — the user must train first (exit 3)."""

    exit_code = 3


class LockedError(ChurnPredictError):
    """Another run holds the output lock (exit 4)."""

    exit_code = 4


class DriftError(ChurnPredictError):
    """Today's features drifted past the configured failure threshold (exit 5)."""

    exit_code = 5


class TrackingError(ChurnPredictError):
    """The MLflow tracking store cannot be reached, read or written (exit 6)."""

    exit_code = 6
