"""How a name made of raw bytes is shown (docs/dataset-format.md#paths): as text that any UTF-8 writer accepts.

Tar members and files on disk are named by bytes, not text: a Latin-1 `résumé.py` is
``b"r\\xe9sum\\xe9.py"``, which is not UTF-8. Such a name must stay distinct from its
neighbours, readable, stable from run to run, and writable to Avro and JSON (which take
UTF-8 only), so each byte that is not part of valid UTF-8 is written as the four
characters ``\\xHH`` (Python's ``backslashreplace``): ``r\\xe9sum\\xe9.py``. Valid UTF-8 is
left as it is.
"""

from __future__ import annotations


def escape_bytes(raw: bytes) -> str:
    """`raw` decoded as UTF-8, each byte that is not part of valid UTF-8 as ``\\xHH`` (lower-case hex)."""
    return raw.decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """A name Python got from the OS (``os.listdir``, ``sys.argv``) as `escape_bytes` shows it.

    Python keeps undecodable bytes of such names as lone surrogates (PEP 383), which
    cannot be written as UTF-8; this gives back the bytes and escapes them.
    """
    try:
        return escape_bytes(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate that no byte stands for: show the code point itself
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
