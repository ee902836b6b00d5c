"""Which versions of one model are served: TF Serving's ``model_version_policy`` (``latest``,
``all`` or ``specific``; by default ``latest { num_versions: 1 }``) and ``version_labels``.

``sync()`` compares the version directories under the base path with the policy: the versions
it wants and are not loaded are loaded and warmed up, newest first, *before* the versions it no
longer wants are unloaded, so requests never see a gap (TF Serving's availability-preserving
transition). A version that fails to load leaves the others serving and is tried again after
``retry_seconds``; while any wanted version is missing, no version is unloaded. Every version
seen keeps a status for ``GetModelStatus``. The registry (``registry.py``) calls ``sync()`` every
``--poll-seconds``, as ``--file_system_poll_wait_seconds`` does in TF Serving.
"""
import logging
import threading
import time

import grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import file_system_storage_path_source_pb2

from wgan_tf.errors import ConfigError
from wgan_tf.serving.servable import RequestError, Servable
from wgan_tf.serving.versions import version_numbers

log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State
VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig \
    .ServableVersionPolicy


class VersionManager:
    """Loads the versions of one model that its policy wants, and swaps them while serving.

    ``servable_options`` are passed to every ``Servable`` (``max_batch``, ``batcher``,
    ``metrics``).
    """

    def __init__(self, name, base_path, policy=None, labels=None, retry_seconds=60.0,
                 **servable_options):
        self.name, self.base_path = name, str(base_path)
        self.policy = policy if policy is not None else VersionPolicy()
        self.labels = dict(labels or {})
        self.retry_seconds, self.servable_options = retry_seconds, servable_options
        self._loaded = {}  # version -> Servable; replaced whole, so readers need no lock
        self._newest_wanted = None
        self._was_ready = False
        self._status = {}  # version -> (State, error message or "")
        self._failed_at = {}  # version -> time.monotonic() of its last failed load
        self._lock = threading.Lock()

    def configure(self, policy, labels):
        """A reloaded config's policy and labels (the next ``sync`` applies the policy)."""
        self.policy, self.labels = policy, dict(labels)

    def wanted(self, versions):
        """The versions of ``versions`` (sorted, on disk) that the policy serves."""
        choice = self.policy.WhichOneof("policy_choice")
        if choice == "all":
            return list(versions)
        if choice == "specific":
            return sorted(set(versions) & set(self.policy.specific.versions))
        count = self.policy.latest.num_versions if choice == "latest" else 1
        return list(versions[-max(count, 1):])

    def load_initial(self):
        """The first ``sync``, at start: no version to serve, or the newest one failing to load,
        is a ConfigError."""
        versions = version_numbers(self.base_path)
        if not self.wanted(versions):
            raise ConfigError(f"no model version under {self.base_path}"
                              f"{' that its model_version_policy serves' if versions else ''}: "
                              f"expected {self.base_path}/<version>/saved_model.pb "
                              "(run `wgan-tf export RUN_DIR --out ...` first)")
        self.sync()
        if not self.ready():
            newest = self._newest_wanted
            raise ConfigError(f"cannot load {self.base_path}/{newest}: "
                              f"{self._status.get(newest, (None, 'not loaded'))[1]}")

    def sync(self):
        """Load what the policy wants and is not loaded; then unload what it no longer wants."""
        wanted = self.wanted(version_numbers(self.base_path))
        self._newest_wanted = wanted[-1] if wanted else None
        for version in reversed(wanted):
            if version in self._loaded:
                continue
            failed = self._failed_at.get(version)
            if failed is not None and time.monotonic() - failed < self.retry_seconds:
                continue
            try:
                self._load(version)
            except Exception as e:  # keep serving what is loaded; the status tells why
                log.error("cannot load %s version %d: %s", self.name, version, e)
        if all(v in self._loaded for v in wanted):
            for version in set(self._loaded) - set(wanted):
                self._unload(version)

    def unload_all(self):
        for version in list(self._loaded):
            self._unload(version)

    def ready(self):
        """Whether the newest version the policy wants is loaded (and so warmed up).

        Once it has been, a newer version found later does not make the model unready while a
        version still serves: every replica of a Deployment finds the new version at once, and
        readiness turning off would take them all out of their Service together.
        """
        loaded = self._loaded
        if self._newest_wanted is not None and self._newest_wanted in loaded:
            self._was_ready = True
        return self._was_ready and bool(loaded)

    def servable(self, version=None, label=None):
        """The servable for a request: the newest loaded version, or the one asked for by number
        or by label."""
        loaded = self._loaded
        if label:
            if label not in self.labels:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Unrecognized servable version label: {label}")
            version = self.labels[label]
        if version is None:
            servable = loaded[max(loaded)] if loaded else None
        else:
            servable = loaded.get(version)
        if servable is None:
            what = f"Specific({self.name}, {version})" if version else f"Latest({self.name})"
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: {what}")
        return servable

    def status(self, version=None, label=None):
        """GetModelStatusResponse for every version seen, newest first (or just the one asked
        for by number or label)."""
        if label:
            if label not in self.labels:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Unrecognized servable version label: {label}")
            version = self.labels[label]
        with self._lock:
            items = sorted(self._status.items(), reverse=True)
        if version is not None:
            items = [(v, s) for v, s in items if v == version]
            if not items:
                raise RequestError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find version {version} of model {self.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for v, (state, error) in items:
            entry = response.model_version_status.add(version=v, state=state)
            entry.status.SetInParent()  # TF Serving always reports a status, OK when empty
            if error:
                entry.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
                entry.status.error_message = error
        return response

    def _set_status(self, version, state, error=""):
        with self._lock:
            self._status[version] = (state, error)

    def _load(self, version):
        self._set_status(version, State.LOADING)
        try:
            servable = Servable(self.name, version, f"{self.base_path}/{version}",
                                **self.servable_options)
            warmed = servable.warm_up()
        except Exception as e:
            self._set_status(version, State.END, str(e).splitlines()[0])
            self._failed_at[version] = time.monotonic()
            raise
        self._loaded = {**self._loaded, version: servable}
        self._set_status(version, State.AVAILABLE)
        log.info("serving %s version %d (%d warm-up requests replayed)", self.name, version, warmed)

    def _unload(self, version):
        self._loaded = {v: s for v, s in self._loaded.items() if v != version}
        self._set_status(version, State.END)
        log.info("unloaded %s version %d", self.name, version)
