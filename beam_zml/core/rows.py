"""Rows checked against their Avro schema where they are built (docs/design.md#faults-and-limits): a value that does not fit never reaches a writer.

fastavro's writer raises on the first value of a wrong type, and a raise in a sink stops the whole run. So
every row is fitted here first: each field is validated against its own schema with `fastavro.validation`,
a field that does not fit is replaced by its default (or, if the schema gives none, its type's empty value),
text that is not valid Unicode has its lone surrogates replaced (fastavro validates it but cannot write it), and the caller is told which fields were replaced and why, to fail the row's record with that reason.
"""

from __future__ import annotations

import functools

from fastavro.validation import ValidationError, validate

from beam_zml.schemas import load_schema

_EMPTY = {"null": None, "string": "", "long": 0, "int": 0, "boolean": False, "array": [], "map": {}}


def fit_row(row: dict, schema_name: str) -> tuple[dict, list[str]]:
    """`row` with every field the schema `schema_name` ("record" or "file") knows, each fitting it.

    Returns the fitted row (a new dict; fields the schema does not name are dropped) and one message per
    field that did not fit, "FIELD: why", empty when the row was fine as it was.
    """
    fitted, problems = {}, []
    for name, schema, default in _fields(schema_name):
        value = row.get(name, default)
        try:
            validate(value, schema, field=name, raise_errors=True)
        except ValidationError as error:
            problems.append(f"{name}: {_reason(error)}")
            value = default
        repaired = _encodable(value)
        if repaired != value:  # a lone surrogate (JSON allows "\ud800") validates as a string, but cannot be written
            problems.append(f"{name}: text that is not valid Unicode (lone surrogates), replaced by U+FFFD")
            value = repaired
        fitted[name] = value
    return fitted, problems


@functools.lru_cache(maxsize=None)
def _fields(schema_name: str) -> tuple[tuple[str, object, object], ...]:
    """(name, parsed schema, default) per field; the first field that defines a named type carries its definition."""
    fields = []
    for field in load_schema(schema_name)["fields"]:
        schema = field["type"]
        default = field["default"] if "default" in field else _EMPTY[_type_name(schema)]
        fields.append((field["name"], schema, default))
    return tuple(fields)


def _type_name(schema) -> str:
    if isinstance(schema, list):
        return _type_name(schema[0])
    return schema["type"] if isinstance(schema, dict) else schema


def _encodable(value):
    """`value` with every string made encodable as UTF-8 (Avro's strings), lone surrogates replaced."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return value
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return value


def _reason(error: ValidationError) -> str:
    """fastavro's message (a JSON list of strings), cut to something a row's error can carry."""
    text = " ".join(str(part) for part in error.args[0]) if error.args and isinstance(error.args[0], list) else str(error)
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:200] + "..."
