"""tf.train.Example records written straight in the protobuf wire format, for a fixed set of scalar features.

The schema is tensorflow/core/example/{example,feature}.proto:

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }   # on the wire: repeated FeatureEntry {key = 1; value = 2}
    Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }  Int64List { repeated int64 value = 1 [packed = true]; }

Every message field is a length-delimited record (tag byte, varint length, bytes) and an int64 a varint
(a negative one in ten bytes, two's complement), per https://protobuf.dev/programming-guides/encoding/.
The entries are written in key order, as protobuf's deterministic serialisation writes a map, so the
bytes equal `tf.train.Example(...).SerializeToString(deterministic=True)` (tests/test_example_proto.py).

Why not protobuf's message classes: building a message costs one Python call per value and a copy
of each image; here all the features that one file's images share are encoded once per file, and
each image costs a few byte joins (beam_zml.core.examples). TensorFlow itself is not imported either.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

_LENGTH_DELIMITED_1 = b"\x0a"  # field 1, wire type 2
_LENGTH_DELIMITED_2 = b"\x12"  # field 2, wire type 2
_INT64_LIST = b"\x1a"  # Feature.int64_list: field 3, wire type 2


def varint(value: int) -> bytes:
    """`value` as a protobuf varint; an int64 below 0 as its 64-bit two's complement (ten bytes)."""
    if 0 <= value < _SMALL_LIMIT:
        return _SMALL[value]
    return _varint(value)


def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_LIMIT = 1 << 14  # lengths and counts below this (one or two bytes) come from a table
_SMALL = tuple(_varint(value) for value in range(_SMALL_LIMIT))


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    return b"".join((tag, varint(len(payload)), payload))


def bytes_feature_value(value: bytes) -> bytes:
    """The bytes of a Feature holding BytesList([value])."""
    return length_delimited(_LENGTH_DELIMITED_1, length_delimited(_LENGTH_DELIMITED_1, value))


def bytes_feature_header(size: int) -> bytes:
    """What precedes `size` bytes of value in a Feature holding BytesList([value]): for values not to copy."""
    inner = 1 + len(varint(size)) + size  # BytesList: tag, length, value
    return b"".join((_LENGTH_DELIMITED_1, varint(inner), _LENGTH_DELIMITED_1, varint(size)))


def int64_feature_value(value: int) -> bytes:
    """The bytes of a Feature holding Int64List([value]) (packed, as proto3 writes it)."""
    return length_delimited(_INT64_LIST, length_delimited(_LENGTH_DELIMITED_1, varint(value)))


def entry(key: str, feature: bytes) -> bytes:
    """One `Features.feature` map entry (with its own field tag): `key` -> the encoded Feature `feature`."""
    key_bytes = key.encode("utf-8")
    body = b"".join((_LENGTH_DELIMITED_1, varint(len(key_bytes)), key_bytes, _LENGTH_DELIMITED_2, varint(len(feature)), feature))
    return length_delimited(_LENGTH_DELIMITED_1, body)


def entry_header(key: str, feature_size: int) -> bytes:
    """What precedes a Feature of `feature_size` bytes in its map entry: for features not to copy."""
    key_bytes = key.encode("utf-8")
    body = 1 + len(varint(len(key_bytes))) + len(key_bytes) + 1 + len(varint(feature_size)) + feature_size
    return b"".join((_LENGTH_DELIMITED_1, varint(body), _LENGTH_DELIMITED_1, varint(len(key_bytes)), key_bytes,
                     _LENGTH_DELIMITED_2, varint(feature_size)))


@functools.lru_cache(maxsize=4096)
def int64_entry(key: str, value: int) -> bytes:
    """The map entry `key` -> Int64List([value]); cached, as segments and line counts repeat."""
    return entry(key, int64_feature_value(value))


def example(entries: Iterable[bytes], size: int | None = None) -> list[bytes]:
    """The pieces of one Example made of `entries` (already in key order); `size` is their total length if known.

    Returned as pieces (Example header first) so that a large entry need not be copied to be joined.
    """
    entries = list(entries)
    total = sum(map(len, entries)) if size is None else size
    return [_LENGTH_DELIMITED_1, varint(total), *entries]


class Int64Replacer:
    """Serialized Examples with each feature named in `values` set to Int64List([value]), for a run of
    Examples that share their layout: the Examples of one file.

    The other entries keep their bytes and their places, so an Example written in key order stays in key
    order, and the result equals what writing it with these values would give. Each Example must be one
    whose only field is its Features, with every key of `values` among its entries (as this module writes
    them); calling the replacer raises ValueError otherwise.

    The first Example is walked entry by entry; from it the replacer learns the layout: runs of entries
    whose bytes every Example repeats (compared, then replaced as a whole) and the entries of
    `per_example` keys, whose bytes differ (the image, its line count, its segment: kept as they are).
    The next Examples are checked against that layout in a few slices; one that does not fit it is
    walked entry by entry instead. Either way the result is the same bytes.
    """

    def __init__(self, values: dict[str, int], per_example: frozenset[str] = frozenset()):
        self._values = {key.encode("utf-8"): value for key, value in values.items()}
        self._per_example = {key.encode("utf-8") for key in per_example}
        self._layout: list[tuple[bytes, bytes | None]] | None = None  # (bytes repeated, replacement) or (key prefix, None)

    def __call__(self, data: bytes | memoryview) -> bytes:
        view = memoryview(data)  # entries are sliced, never copied: one of them is the image
        if not view or view[0] != _LENGTH_DELIMITED_1[0]:
            raise ValueError("not an Example of Features alone")
        size, offset = _read_varint(view, 1)
        if offset + size != len(view):
            raise ValueError("not an Example of Features alone")
        entries = self._replace_as_learnt(view, offset) if self._layout is not None else None
        if entries is None:
            entries = self._walk(view, offset)
        return b"".join(example(entries, sum(map(len, entries))))

    def _walk(self, view: memoryview, offset: int) -> list:
        """The entries with the values replaced, found one by one; learns the layout if none is known yet."""
        entries: list[bytes | memoryview] = []
        layout: list[tuple[bytes, bytes | None]] = []
        found = 0
        while offset < len(view):
            body_size, body = _read_varint(view, offset + 1)
            end = body + body_size
            if view[offset] != _LENGTH_DELIMITED_1[0] or end > len(view) or view[body] != _LENGTH_DELIMITED_1[0]:
                raise ValueError("malformed feature entry in an Example")
            key_size, key_start = _read_varint(view, body + 1)
            key = view[key_start : key_start + key_size].tobytes()
            original = view[offset:end]
            if key in self._per_example:
                entries.append(original)
                layout.append((bytes(view[body : key_start + key_size]), None))
            else:
                entries.append(int64_entry(key.decode("utf-8"), self._values[key]) if key in self._values else original)
                found += key in self._values
                if layout and layout[-1][1] is not None:  # runs of repeated entries are one piece
                    layout[-1] = (layout[-1][0] + original.tobytes(), layout[-1][1] + bytes(entries[-1]))
                else:
                    layout.append((original.tobytes(), bytes(entries[-1])))
            offset = end
        if found != len(self._values):
            raise ValueError(f"Example lacks some of the features {sorted(key.decode() for key in self._values)}")
        if self._layout is None:
            self._layout = layout
        return entries

    def _replace_as_learnt(self, view: memoryview, offset: int) -> list | None:
        """The entries with the values replaced if the Example fits the learnt layout, else None."""
        entries: list[bytes | memoryview] = []
        for repeated, replacement in self._layout:
            if replacement is not None:
                end = offset + len(repeated)
                if view[offset:end] != repeated:
                    return None
                entries.append(replacement)
            else:  # an entry of its own: tag, length, then the key prefix learnt
                if offset >= len(view) or view[offset] != _LENGTH_DELIMITED_1[0]:
                    return None
                body_size, body = _read_varint(view, offset + 1)
                end = body + body_size
                if end > len(view) or view[body : body + len(repeated)] != repeated:
                    return None
                entries.append(view[offset:end])
            offset = end
        return entries if offset == len(view) else None


def parse_example(data: bytes) -> dict[str, bytes | int]:
    """The features of one serialized Example whose features are scalars: bytes for a BytesList, int for an Int64List.

    The inverse of what this module writes, and of TensorFlow's writer for such Examples (a packed or an
    unpacked Int64List alike); a feature with no value is left out. Raises ValueError on a malformed message.
    """
    features: dict[str, bytes | int] = {}
    for number, example_field in _fields(data):
        if number != 1:  # Example.features
            continue
        for entry_number, entry_bytes in _fields(example_field):
            if entry_number != 1:  # Features.feature (a map entry)
                continue
            key, feature = "", b""
            for part_number, part in _fields(entry_bytes):
                if part_number == 1:
                    key = part.decode("utf-8")
                elif part_number == 2:
                    feature = part
            for kind, values in _fields(feature):  # Feature: 1 bytes_list, 2 float_list, 3 int64_list
                for value_number, value in _fields(values):
                    if value_number != 1:
                        continue
                    if kind == 1:
                        features[key] = value
                    elif kind == 3:
                        features[key] = _signed(value if isinstance(value, int) else _varints(value)[0])
    return features


def _fields(data: bytes):
    """(field number, value) of each field of a message: an int for a varint, bytes for a length-delimited field."""
    offset = 0
    while offset < len(data):
        key, offset = _read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, offset = _read_varint(data, offset)
            yield number, value
        elif wire_type == 2:
            size, offset = _read_varint(data, offset)
            if offset + size > len(data):
                raise ValueError("truncated Example")
            yield number, data[offset : offset + size]
            offset += size
        else:
            raise ValueError(f"unexpected wire type {wire_type} in an Example")


def _read_varint(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    if offset < len(data) and data[offset] < 0x80:  # most lengths and keys: one byte
        return data[offset], offset + 1
    value = shift = 0
    while True:
        if offset >= len(data):
            raise ValueError("truncated varint in an Example")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7


def _varints(data: bytes) -> list[int]:
    values, offset = [], 0
    while offset < len(data):
        value, offset = _read_varint(data, offset)
        values.append(value)
    return values


def _signed(value: int) -> int:
    """A varint read back as the int64 it encodes (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value
