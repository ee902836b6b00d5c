#!/usr/bin/env python3
"""Health checks run by the images' Docker HEALTHCHECK. Exit 0: healthy, 1: unhealthy.

    healthcheck.py ready [URL]        the REST readiness endpoint of `wgan-tf serve` answers 200
                                      (default http://127.0.0.1:8501/v2/health/ready): every
                                      model's newest version loaded and warmed up
    healthcheck.py grpc [HOST:PORT]   the gRPC health service says SERVING, overall ("") and
                                      for tensorflow.serving.PredictionService (`wgan-tf serve`
                                      says so once ready, as above)
    healthcheck.py progress [DIR]     training moves: a file under DIR (default /runs) changed
                                      in the last $WGAN_TF_STALL_SECONDS (default 1800); an
                                      empty DIR is healthy, there is nothing to judge yet

Standard library and grpcio-health-checking only, so a check costs a fraction of a second and
never imports TensorFlow.
"""
import os
import sys
import time

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"


def grpc_health(address="127.0.0.1:8500", timeout=3.0):
    """(healthy, message) from the standard grpc.health.v1 service."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", PREDICTION_SERVICE):
            name = service or "(overall)"
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status
            except grpc.RpcError as e:
                return False, f"{address} {name}: {e.code().name}"
            if status != health_pb2.HealthCheckResponse.SERVING:
                return False, f"{address} {name}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
    return True, f"{address}: SERVING (overall and {PREDICTION_SERVICE})"


def http_ready(url="http://127.0.0.1:8501/v2/health/ready", timeout=3.0):
    """(healthy, message): whether ``url`` answers 200 (503 while the models load)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status == 200, f"{url}: {answer.status}"
    except urllib.error.HTTPError as e:
        return False, f"{url}: {e.code} {e.read(300).decode(errors='replace')}"
    except OSError as e:
        return False, f"{url}: {getattr(e, 'reason', e)}"


def training_progress(directory="/runs", max_depth=4):
    """(healthy, message) from the newest modification time under ``directory``."""
    stall = float(os.environ.get("WGAN_TF_STALL_SECONDS", "1800"))
    newest, root_depth = None, directory.rstrip("/").count("/")
    for root, dirs, files in os.walk(directory):
        if root.count("/") - root_depth >= max_depth:
            dirs[:] = []
        for name in files:
            try:
                mtime = os.stat(os.path.join(root, name)).st_mtime
            except OSError:  # removed between listing and stat (checkpoint rotation)
                continue
            newest = mtime if newest is None else max(newest, mtime)
    if newest is None:
        return True, f"nothing under {directory} yet"
    age = time.time() - newest
    return age <= stall, f"{directory} last changed {age:.0f} s ago (stall limit {stall:.0f} s)"


def main(argv):
    checks = {"ready": http_ready, "grpc": grpc_health, "progress": training_progress}
    if not argv or argv[0] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    healthy, message = checks[argv[0]](*argv[1:])
    print(message if healthy else f"unhealthy: {message}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
