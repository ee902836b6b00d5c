"""Which version is served: TF Serving's default version policy, ``latest { num_versions: 1 }``.

The newest version directory under the base path is loaded and warmed up at start. A thread then
polls the base path (as ``--file_system_poll_wait_seconds`` does in TF Serving): when the newest
version changes, it is loaded and warmed up *before* it replaces the old one, so requests never
see a gap. A version that fails to load leaves the old one serving and is tried again after
``retry_seconds``. Every version seen keeps a status for ``GetModelStatus``.
"""
import logging
import threading
import time

import grpc
from tensorflow_serving.apis import get_model_status_pb2

from wgan_tf.errors import ConfigError
from wgan_tf.serving.servable import RequestError, Servable
from wgan_tf.serving.versions import version_numbers

log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State


class VersionManager:
    """Loads the newest version of one model and swaps in newer ones while serving."""

    def __init__(self, name, base_path, max_batch=1024, poll_seconds=1.0, retry_seconds=60.0):
        self.name, self.base_path, self.max_batch = name, base_path, max_batch
        self.poll_seconds, self.retry_seconds = poll_seconds, retry_seconds
        self._current = None
        self._status = {}  # version -> (State, error message or "")
        self._failed_at = {}  # version -> time.monotonic() of its last failed load
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def load_newest(self):
        """Load the newest version now; a missing or unloadable model is a ConfigError."""
        versions = version_numbers(self.base_path)
        if not versions:
            raise ConfigError(f"no model version under {self.base_path}: expected "
                              f"{self.base_path}/<version>/saved_model.pb "
                              "(run `wgan-tf export RUN_DIR --out ...` first)")
        try:
            self._load(versions[-1])
        except Exception as e:
            raise ConfigError(f"cannot load {self.base_path}/{versions[-1]}: "
                              f"{str(e).splitlines()[0]}") from e

    def start(self):
        """Poll the base path for new versions in a daemon thread."""
        self._thread = threading.Thread(target=self._poll, name="version-poller", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def servable(self, version=None):
        """The servable for a request: the current one, or a specific version if it is loaded."""
        current = self._current
        if current is None or (version is not None and version != current.version):
            what = f"Specific({self.name}, {version})" if version else f"Latest({self.name})"
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: {what}")
        return current

    def status(self, version=None):
        """GetModelStatusResponse for every version seen, newest first (or just ``version``)."""
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
            servable = Servable(self.name, version, f"{self.base_path}/{version}", self.max_batch)
            warmed = servable.warm_up()
        except Exception as e:
            self._set_status(version, State.END, str(e).splitlines()[0])
            self._failed_at[version] = time.monotonic()
            raise
        old, self._current = self._current, servable
        self._set_status(version, State.AVAILABLE)
        if old is not None:
            self._set_status(old.version, State.END)
        log.info("serving %s version %d (%d warm-up requests replayed)", self.name, version, warmed)

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            versions = version_numbers(self.base_path)
            if not versions or versions[-1] == self._current.version:
                continue
            newest = versions[-1]
            failed = self._failed_at.get(newest)
            if failed is not None and time.monotonic() - failed < self.retry_seconds:
                continue
            try:
                self._load(newest)
            except Exception as e:  # keep serving the old version; the status tells why
                log.error("cannot load %s version %d: %s", self.name, newest, e)
