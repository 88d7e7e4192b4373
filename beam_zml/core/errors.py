"""Rows of errors/: one JSON line per failure (docs/dataset-format.md#errors)."""

from __future__ import annotations

from beam_zml.core.names import printable


def error_row(
    stage: str,
    record_id: int | None,
    message: str,
    *,
    error_type: str,
    path: str | None = None,
    attempts: int = 1,
) -> dict:
    """A failure with where it happened and why; `stage` names the pipeline step.

    A message or path that holds an OS name which is not UTF-8 is shown escaped (`beam_zml.core.names`).
    """
    return {
        "stage": stage,
        "record_id": record_id,
        "path": None if path is None else printable(path),
        "error_type": error_type,
        "message": printable(message),
        "attempts": attempts,
    }
