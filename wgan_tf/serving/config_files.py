"""TF Serving's configuration files, read as tensorflow_model_server reads them: text-format
protos (``ModelServerConfig`` from tensorflow-serving-api; ``BatchingParameters`` and
``MonitoringConfig`` from ``config_protos``). Every problem is one ``ConfigError`` line that names the
file."""
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from wgan_tf.errors import ConfigError
from wgan_tf.serving.config_protos import BatchingParameters, MonitoringConfig


def read_text_proto(path, message):
    """``message`` (an empty proto) filled from the text-format file at ``path``."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ConfigError(f"{path} is not a text-format {message.DESCRIPTOR.full_name}: "
                          f"{e}") from None


def batching_parameters(path):
    return read_text_proto(path, BatchingParameters())


def prometheus_path(path):
    """The metrics path that the MonitoringConfig at ``path`` enables, or None."""
    config = read_text_proto(path, MonitoringConfig()).prometheus_config
    if not config.enable:
        return None
    from wgan_tf.serving.metrics import DEFAULT_PATH

    metrics_path = config.path or DEFAULT_PATH
    if not metrics_path.startswith("/") or metrics_path.startswith("/v1/"):
        raise ConfigError(f"{path}: prometheus_config.path must start with / and not be under "
                          f"/v1/ (the REST API's), got {metrics_path!r}")
    return metrics_path


def model_configs(path):
    """The ``ModelConfig``s of the ModelServerConfig at ``path``, checked."""
    return check_models(read_text_proto(path, model_server_config_pb2.ModelServerConfig()),
                        str(path))


def check_models(config, source):
    """``config``'s models (a ModelServerConfig from a file or a reload request), checked as
    TF Serving checks them: a model list, unique names, a base path each, the TensorFlow
    platform, positive versions and labels."""
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{source}: only model_config_list is supported (no "
                          "custom_model_config)")
    models = list(config.model_config_list.config)
    names = [m.name for m in models]
    for model in models:
        where = f"{source}: model {model.name!r}"
        if not model.name:
            raise ConfigError(f"{source}: every model needs a name")
        if names.count(model.name) > 1:
            raise ConfigError(f"{where} is configured more than once")
        if not model.base_path:
            raise ConfigError(f"{where} has no base_path")
        if model.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{where}: model_platform {model.model_platform!r} is not "
                              "served here (only tensorflow)")
        policy = model.model_version_policy
        if policy.WhichOneof("policy_choice") == "latest" and policy.latest.num_versions < 0:
            raise ConfigError(f"{where}: latest.num_versions must be positive")
        if any(v < 1 for v in policy.specific.versions):
            raise ConfigError(f"{where}: specific versions must be positive")
        bad = {k: v for k, v in model.version_labels.items() if v < 1 or not k}
        if bad:
            raise ConfigError(f"{where}: version_labels must map names to positive versions, "
                              f"got {bad}")
    return models
