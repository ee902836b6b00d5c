"""The message types of TF Serving's batching and monitoring files, which the tensorflow-serving-api
wheel (2.21) does not ship: ``tensorflow.serving.BatchingParameters`` (``--batching_parameters_file``)
and ``tensorflow.serving.MonitoringConfig`` (``--monitoring_config_file``).

A text-format file is read by field name, so the schema is what matters: the names, numbers and
types below are the file formats' (as TF Serving documents them), declared here and built into
message classes in a private descriptor pool at import, with no generated code and no protoc.
"""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_PACKAGE = "tensorflow.serving"
_OPTIONAL, _REPEATED = (descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                        descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
_TYPES = {"int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
          "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
          "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING}

# (message, [(field, number, type, repeated)]); a type with a dot is a message type.
_MESSAGES = [
    ("BatchingParameters", [
        ("max_batch_size", 1, "google.protobuf.Int64Value", False),
        ("batch_timeout_micros", 2, "google.protobuf.Int64Value", False),
        ("max_enqueued_batches", 3, "google.protobuf.Int64Value", False),
        ("num_batch_threads", 4, "google.protobuf.Int64Value", False),
        ("thread_pool_name", 5, "google.protobuf.StringValue", False),
        ("allowed_batch_sizes", 6, "int64", True),
        ("pad_variable_length_inputs", 7, "bool", False),
        ("enable_large_batch_splitting", 8, "google.protobuf.BoolValue", False),
        ("max_execution_batch_size", 9, "google.protobuf.Int64Value", False),
    ]),
    ("PrometheusConfig", [("enable", 1, "bool", False), ("path", 2, "string", False)]),
    ("MonitoringConfig", [("prometheus_config", 1, f"{_PACKAGE}.PrometheusConfig", False)]),
]


def _message_classes():
    schema = descriptor_pb2.FileDescriptorProto(
        name="wgan_tf/serving/config_protos.proto", package=_PACKAGE, syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name])
    for name, fields in _MESSAGES:
        message = schema.message_type.add(name=name)
        for field, number, kind, repeated in fields:
            entry = message.field.add(name=field, number=number,
                                      label=_REPEATED if repeated else _OPTIONAL)
            if "." in kind:
                entry.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                entry.type_name = f".{kind}"
            else:
                entry.type = _TYPES[kind]
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(schema)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name, _ in _MESSAGES}


_CLASSES = _message_classes()
BatchingParameters = _CLASSES["BatchingParameters"]
MonitoringConfig = _CLASSES["MonitoringConfig"]
