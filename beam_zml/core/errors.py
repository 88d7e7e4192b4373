"""Rows of errors/: one JSON line per failure (docs/dataset-format.md#errors)."""

from __future__ import annotations


def error_row(
    stage: str,
    record_id: int | None,
    message: str,
    *,
    error_type: str,
    path: str | None = None,
    attempts: int = 1,
) -> dict:
    """A failure with where it happened and why; `stage` names the pipeline step."""
    return {
        "stage": stage,
        "record_id": record_id,
        "path": path,
        "error_type": error_type,
        "message": message,
        "attempts": attempts,
    }
