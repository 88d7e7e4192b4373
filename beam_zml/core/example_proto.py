"""tf.train.Example's message classes, built with protobuf alone from their schema.

TensorFlow's own `example_pb2` makes every worker import TensorFlow: 3 s and
500 MB a process (benchmarks/bench_pipeline.py). The wire format is the same,
so the bytes these classes write are Examples that TensorFlow reads.
The schema is tensorflow/core/example/{feature,example}.proto.
"""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "tensorflow"
_LABEL = descriptor_pb2.FieldDescriptorProto
_FIELD_TYPES = {
    "bytes": _LABEL.TYPE_BYTES,
    "float": _LABEL.TYPE_FLOAT,
    "int64": _LABEL.TYPE_INT64,
    "string": _LABEL.TYPE_STRING,
}


@functools.lru_cache(maxsize=1)
def example_class():
    """The `tensorflow.Example` message class."""
    schema = descriptor_pb2.FileDescriptorProto(name="beam_zml/example.proto", package=_PACKAGE, syntax="proto3")
    for name, kind in (("BytesList", "bytes"), ("FloatList", "float"), ("Int64List", "int64")):
        message = schema.message_type.add(name=name)
        _field(message, "value", 1, kind, repeated=True)
    feature = schema.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, type_name) in enumerate(
        (("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")), start=1
    ):
        _field(feature, name, number, type_name=type_name, oneof_index=0)
    features = schema.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, "string")
    _field(entry, "value", 2, type_name="Feature")
    _field(features, "feature", 1, type_name="Features.FeatureEntry", repeated=True)
    example = schema.message_type.add(name="Example")
    _field(example, "features", 1, type_name="Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Example"))


def _field(message, name: str, number: int, kind: str | None = None, *, type_name: str | None = None,
           repeated: bool = False, oneof_index: int | None = None) -> None:
    field = message.field.add(name=name, number=number)
    field.label = _LABEL.LABEL_REPEATED if repeated else _LABEL.LABEL_OPTIONAL
    if type_name is not None:
        field.type = _LABEL.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}.{type_name}"
    else:
        field.type = _FIELD_TYPES[kind]
    if oneof_index is not None:
        field.oneof_index = oneof_index
