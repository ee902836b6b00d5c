"""The models one server serves, by name: from ``--model-base-path``/``--model-name`` (one model)
or from a ``--model-config-file`` (TF Serving's ModelServerConfig: several models, each with its
version policy and labels).

One thread polls: every ``poll_seconds`` it syncs every model's versions with its base path
(``manager.VersionManager.sync``), and every ``config_poll_seconds`` (if not 0) it reads the
config file again and applies it when it changed, as ``--model_config_file_poll_wait_seconds``
does in TF Serving. ``reload`` applies a config at once (the file's, or a
``HandleReloadConfigRequest``'s): new models are loaded before it returns, models no longer named
are unloaded, the others take their new policy and labels. A reload that cannot be applied
changes nothing.
"""
import logging
import threading
from pathlib import Path

import grpc
from tensorflow_serving.config import model_server_config_pb2

from wgan_tf.errors import ConfigError
from wgan_tf.serving import config_files
from wgan_tf.serving.manager import VersionManager
from wgan_tf.serving.servable import RequestError

log = logging.getLogger(__name__)


def single_model_config(name, base_path):
    """The ModelServerConfig that ``--model-name NAME --model-base-path PATH`` mean."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=str(base_path),
                                        model_platform="tensorflow")
    return config


class ModelRegistry:
    """Models by name; ``servable(spec)`` and ``status(spec)`` resolve a request's ModelSpec
    with TF Serving's error codes. ``servable_options`` go to every model's servables."""

    def __init__(self, config, config_file=None, poll_seconds=1.0, config_poll_seconds=0.0,
                 **servable_options):
        self.config_file, self.poll_seconds = config_file, poll_seconds
        self.config_poll_seconds, self.servable_options = config_poll_seconds, servable_options
        self._models = {}  # name -> VersionManager; replaced whole
        self._config_text = None
        self._pending = config_files.check_models(config, config_file or "the model config")
        self._sync_lock = threading.RLock()  # one sync or reload at a time
        self._stop = threading.Event()
        self._thread = None
        self.on_change = lambda: None  # called after every poll and reload (health follows)

    @classmethod
    def from_file(cls, path, **options):
        config = config_files.read_text_proto(path, model_server_config_pb2.ModelServerConfig())
        registry = cls(config, config_file=str(path), **options)
        registry._config_text = Path(path).read_text()
        return registry

    def load_initial(self):
        """Load every configured model's newest version; a model that cannot be served is a
        ConfigError (after which nothing stays loaded)."""
        with self._sync_lock:
            # Visible at once, so that status requests answer LOADING, as TF Serving's do.
            self._models = self._managers_for(self._pending)
            for manager in self._models.values():
                manager.load_initial()

    def start(self):
        self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def names(self):
        return sorted(self._models)

    def ready(self):
        """Whether every configured model serves the newest version its policy wants."""
        models = self._models
        return bool(models) and all(m.ready() for m in models.values())

    def readiness(self):
        """``{name: ready}`` of every configured model."""
        return {name: m.ready() for name, m in sorted(self._models.items())}

    def manager(self, name):
        manager = self._models.get(name)
        if manager is None:
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Latest({name}); this server "
                               f"has {', '.join(map(repr, self.names())) or 'no model'}")
        return manager

    def servable(self, spec):
        return self.manager(spec.name).servable(*_version(spec))

    def status(self, spec):
        return self.manager(spec.name).status(*_version(spec))

    def reload(self, config, source="HandleReloadConfigRequest"):
        """Serve the models of ``config`` (a ModelServerConfig) from now on."""
        models = config_files.check_models(config, source)
        with self._sync_lock:
            managers = self._managers_for(models, keep=self._models)
            for name, manager in managers.items():
                if manager is not self._models.get(name):
                    manager.load_initial()  # a ConfigError here leaves everything as it was
            for model in models:
                managers[model.name].configure(model.model_version_policy,
                                               dict(model.version_labels))
            removed = [m for name, m in self._models.items() if managers.get(name) is not m]
            self._models = managers
        for manager in removed:
            manager.unload_all()
        self.on_change()
        log.info("model config applied (%s): %s", source, ", ".join(self.names()))

    def _managers_for(self, models, keep=None):
        """VersionManagers for ``models``: the ones in ``keep`` with the same base path are
        reused (``reload`` gives them their new policy and labels), so their loaded versions
        keep serving."""
        managers = {}
        for model in models:
            old = (keep or {}).get(model.name)
            if old is not None and old.base_path == model.base_path:
                managers[model.name] = old
            else:
                managers[model.name] = VersionManager(
                    model.name, model.base_path, model.model_version_policy,
                    dict(model.version_labels), **self.servable_options)
        return managers

    def _poll(self):
        since_config = 0.0
        while not self._stop.wait(self.poll_seconds):
            since_config += self.poll_seconds
            if self.config_file and self.config_poll_seconds and \
                    since_config >= self.config_poll_seconds:
                since_config = 0.0
                self._reload_file()
            with self._sync_lock:
                for manager in self._models.values():
                    manager.sync()
            self.on_change()

    def _reload_file(self):
        try:
            text = Path(self.config_file).read_text()
        except OSError as e:
            log.error("cannot read %s (keeping the models served): %s", self.config_file, e)
            return
        if text == self._config_text:
            return
        try:
            self.reload(config_files.read_text_proto(
                self.config_file, model_server_config_pb2.ModelServerConfig()), self.config_file)
        except ConfigError as e:
            log.error("%s (keeping the models served)", e)
        self._config_text = text


def _version(spec):
    """(version number or None, label or None) that a ModelSpec asks for."""
    return (spec.version.value if spec.HasField("version") else None), spec.version_label or None
