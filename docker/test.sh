#!/usr/bin/env bash
# The container test: builds the `train` and `serving-python` images on the local base image
# (docker/build-base-image.sh; nothing is pulled) and runs them for real:
#
#   1. the build context holds only what .dockerignore allows;
#   2. `train` trains a tiny WGAN on the built-in digits and exports it, as its non-root user,
#      into a named volume; the export becomes both models (wgan, flowers) of
#   3. `serving-python`, whose container must turn healthy (its HEALTHCHECK asks the readiness
#      endpoint), runs as a non-root user, answers the package's Client for both models and
#      `wgan-tf generate` from the host, says ready for both on /v2/health/ready, counts the
#      requests in its Prometheus metrics with batching on, and stops cleanly on `docker stop`
#      (exit status 0 or 143, before the kill timeout);
#   4. docker-compose.yml runs the server and its one-shot client, which writes a grid;
#   5. its multi-worker profile trains a chief and a worker container as one multi-worker job
#      (TF_CONFIG, MultiWorkerMirroredStrategy) for 2 iterations, then resumes the run to 4.
#
# Usage: docker/test.sh   (make docker-test). Exit 0: passed, or skipped because Docker cannot
# run here and this is not CI (one SKIP line says why). In CI (CI=true) Docker is installed and
# started if need be, and anything missing is a failure.
#
# Environment: WGAN_TF_PYTHON (host Python with wgan_tf; default .venv/bin/python), PYTHON_IMAGE
# (use this base instead of building the local one), WGAN_TF_TAG (image tag, default test),
# WGAN_TF_KEEP=1 (keep the work directory), WGAN_TF_DOCKER_CLEAN=1 (remove the images after).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=docker/lib.sh
. docker/lib.sh

TAG=${WGAN_TF_TAG:-test}
BASE_IMAGE=${BASE_IMAGE:-wgan-tf/bookworm-python:local}
STOP_TIMEOUT=${WGAN_TF_STOP_TIMEOUT:-30}
HEALTH_TIMEOUT=${WGAN_TF_HEALTH_TIMEOUT:-240}
if [ -z "${WGAN_TF_PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then WGAN_TF_PYTHON=.venv/bin/python; else WGAN_TF_PYTHON=python3; fi
fi

t_start=$(date +%s)
t_step=$t_start
step() {
    local now
    now=$(date +%s)
    log "--- $* (+$((now - t_step)) s, $((now - t_start)) s in all)"
    t_step=$now
}
fail() {
    log "FAIL: $*"
    exit 1
}

rc=0
ensure_docker || rc=$?
if [ $rc != 0 ]; then
    if [ $rc = 3 ] && ! is_ci; then
        echo "SKIP docker test: Docker cannot run on this machine (see above); CI=true makes it install and start Docker"
        exit 0
    fi
    fail "no usable Docker engine"
fi
"$WGAN_TF_PYTHON" -c 'import wgan_tf.serving' 2>/dev/null ||
    fail "$WGAN_TF_PYTHON cannot import wgan_tf.serving (set WGAN_TF_PYTHON to the dev venv's python)"

id=wgan-tf-test-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/$id.XXXXXX")
model_root=saved_models/$id # inside the build context, which must hold MODEL_DIR
[ -d saved_models ] && made_saved_models=0 || made_saved_models=1
compose=()
cleanup() {
    local status=$?
    set +e
    if [ ${#compose[@]} -gt 0 ]; then
        "${compose[@]}" --profile multi-worker down --volumes --timeout 10 >/dev/null 2>&1
    fi
    "$DOCKER" rm --force --volumes "$id-serve" "$id-export" >/dev/null 2>&1
    "$DOCKER" volume rm -f "$id-runs" >/dev/null 2>&1
    "$DOCKER" image rm -f "$id-context" >/dev/null 2>&1
    rm -rf "$model_root"
    if [ "$made_saved_models" = 1 ]; then rmdir saved_models 2>/dev/null; fi
    if [ "${WGAN_TF_DOCKER_CLEAN:-0}" = 1 ]; then
        "$DOCKER" image rm -f "wgan-tf/train:$TAG" "wgan-tf/serving-python:$TAG" >/dev/null 2>&1
    fi
    if [ $status != 0 ] || [ "${WGAN_TF_KEEP:-0}" = 1 ]; then
        log "logs and outputs kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# A base image that needs no pull, unless one was named.
if [ -z "${PYTHON_IMAGE:-}" ]; then
    step "base image $BASE_IMAGE"
    BASE_IMAGE=$BASE_IMAGE docker/build-base-image.sh || fail "could not make $BASE_IMAGE"
    PYTHON_IMAGE=$BASE_IMAGE
fi

mapfile -t proxy_args < <(proxy_build_args)
build() { # TARGET [docker build args...]
    local target=$1
    shift
    "$DOCKER" build --progress=plain --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" ${proxy_args[@]+"${proxy_args[@]}"} \
        --target "$target" --tag "wgan-tf/$target:$TAG" "$@" . >"$work/build-$target.log" 2>&1 || {
        tail -n 40 "$work/build-$target.log" >&2
        fail "docker build --target $target (log: $work/build-$target.log)"
    }
}
# TensorFlow's start-up chatter, which says nothing about the test.
quiet_tf() { grep -v -E '^(WARNING: All log messages|[IWE][0-9]{4} |To enable the following instructions)' || true; }

# 1. The context: what .dockerignore lets in, listed from a scratch image of it.
step "build context"
printf 'FROM scratch\nCOPY . /\n' | "$DOCKER" build --quiet --file - --tag "$id-context" . >/dev/null
"$DOCKER" create --name "$id-export" "$id-context" none >/dev/null
"$DOCKER" export "$id-export" | tar -t | sed 's|^\./||' | grep -v -E '^(dev|etc|proc|sys)(/|$)|^\.dockerenv$|^$' \
    | sort >"$work/context.txt"
"$DOCKER" rm --volumes "$id-export" >/dev/null
"$DOCKER" image rm "$id-context" >/dev/null
for must in setup.py wgan_tf/cli.py docker/healthcheck.py serving/models.config; do
    grep -qx "$must" "$work/context.txt" || fail "$must is missing from the build context"
done
grep -E '^(\.git|\.venv|runs|tests|build|dist|docs)/|__pycache__|\.egg-info|\.pyc$' "$work/context.txt" >"$work/junk.txt" || true
[ ! -s "$work/junk.txt" ] ||
    fail "the build context holds what .dockerignore keeps out: $(head -n 5 "$work/junk.txt" | tr '\n' ' ')"
log "context: $(grep -c -v '/$' "$work/context.txt") files"

# 2. Train and export in the train image.
step "build train"
build train
train=wgan-tf/train:$TAG
[ "$("$DOCKER" run --rm --entrypoint id "$train" -u)" != 0 ] || fail "train runs as root"

step "train a tiny WGAN in the container"
"$DOCKER" volume create "$id-runs" >/dev/null
"$DOCKER" run --rm -v "$id-runs:/runs" "$train" train --dataset digits --arch dcgan --penalty clip \
    --image-size 16 --channels 1 --batch-size 16 --n-critic 2 --steps 2 --seed 0 --no-critic-boost \
    --out /runs/tiny >"$work/train.log" 2>&1 || { quiet_tf <"$work/train.log" | tail -n 20 >&2; fail "training in the container"; }
"$DOCKER" run --rm -v "$id-runs:/runs" --entrypoint sh "$train" -c 'test -s /runs/tiny/generator.keras' ||
    fail "training in the container wrote no generator"

step "export in the container"
"$DOCKER" run --name "$id-export" -v "$id-runs:/runs" "$train" export /runs/tiny --out /runs/export/wgan \
    >"$work/export.log" 2>&1 || { quiet_tf <"$work/export.log" >&2; fail "export in the container"; }
mkdir -p "$model_root"
"$DOCKER" cp "$id-export:/runs/export/wgan" "$model_root/"
"$DOCKER" rm --volumes "$id-export" >/dev/null
ls "$model_root"/wgan/*/saved_model.pb >/dev/null || fail "the export holds no SavedModel"
# serving/models.config names two models; the same tiny export stands in for the colour one.
cp -r "$model_root/wgan" "$model_root/flowers"

# 3. The Python server image with that model.
step "build serving-python"
build serving-python --build-arg "MODEL_DIR=$model_root/wgan" --build-arg "FLOWERS_DIR=$model_root/flowers"
serve=wgan-tf/serving-python:$TAG

step "run serving-python until healthy"
"$DOCKER" run -d --name "$id-serve" -p 127.0.0.1::8500 -p 127.0.0.1::8501 "$serve" >/dev/null
deadline=$(($(date +%s) + HEALTH_TIMEOUT))
while :; do
    health=$("$DOCKER" inspect --format '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id-serve")
    case $health in
        running/healthy) break ;;
        running/starting) ;;
        *) "$DOCKER" logs "$id-serve" 2>&1 | tail -n 30 >&2; fail "serving-python is $health" ;;
    esac
    if [ "$(date +%s)" -gt "$deadline" ]; then
        "$DOCKER" inspect --format '{{json .State.Health}}' "$id-serve" >&2
        fail "serving-python not healthy after $HEALTH_TIMEOUT s"
    fi
    sleep 2
done
log "health check: $("$DOCKER" inspect --format '{{range .State.Health.Log}}{{.Output}}{{end}}' "$id-serve" | grep . | tail -n 1)"

uid=$("$DOCKER" exec "$id-serve" id -u)
[ "$uid" != 0 ] || fail "serving-python runs as root"
log "serving-python runs as uid $uid ($("$DOCKER" inspect --format '{{.Config.User}}' "$serve"))"

address=$("$DOCKER" port "$id-serve" 8500/tcp | head -n 1)
rest=$("$DOCKER" port "$id-serve" 8501/tcp | head -n 1)
step "ask $address for images of both models with wgan_tf.serving.Client; $rest for readiness and metrics"
"$WGAN_TF_PYTHON" - "$address" "$rest" >"$work/client.log" 2>&1 <<'EOF' || { quiet_tf <"$work/client.log" >&2; fail "the client could not get images from the container"; }
import json
import sys
import urllib.request

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from wgan_tf.serving import Client

address, rest = sys.argv[1:]
ready = json.loads(urllib.request.urlopen(f"http://{rest}/v2/health/ready", timeout=10).read())
assert ready["models"] == {"flowers": True, "wgan": True}, ready
for name in ("wgan", "flowers"):
    with Client(address, model_name=name) as client:
        images = client.generate(8, seed=0)
        assert images.dtype == np.uint8 and images.ndim == 4 and len(images) == 8, (images.dtype, images.shape)
        assert np.array_equal(client.generate(8, seed=0), images), "the same seeds gave other images"
        assert np.array_equal(client.generate(1, seed=5)[0], images[5]), "seed 5 alone differs from seed 5 in a batch"
        assert images.std() > 0, "blank images"
    print(f"client: {len(images)} images of {images.shape[1:]} {images.dtype} of {name} from {address}")
text = urllib.request.urlopen(f"http://{rest}/monitoring/prometheus/metrics", timeout=10).read().decode()
counts = {s.labels["model_name"]: s.value for f in text_string_to_metric_families(text)
          for s in f.samples if s.name == ":tensorflow:serving:request_count_total"
          and s.labels["status"] == "OK"}
assert set(counts) == {"wgan", "flowers"} and min(counts.values()) >= 3, counts
runs = [s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == ":tensorflow:serving:batching_session:wrapped_run_count_total"]
assert runs and runs[0] >= 1, "batching is off in the image"
print(f"metrics: request counts {counts}, {runs[0]:.0f} batched runs")
EOF
quiet_tf <"$work/client.log" >&2
"$WGAN_TF_PYTHON" -m wgan_tf.cli generate --server "$address" --num 16 --seed 0 --out "$work/grid.png" \
    >"$work/generate.log" 2>&1 || { quiet_tf <"$work/generate.log" >&2; fail "wgan-tf generate failed"; }
[ "$(head -c 8 "$work/grid.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "wgan-tf generate wrote no PNG"

step "docker stop"
t0=$(date +%s%N)
"$DOCKER" stop --time "$STOP_TIMEOUT" "$id-serve" >/dev/null
stop_ms=$((($(date +%s%N) - t0) / 1000000))
code=$("$DOCKER" inspect --format '{{.State.ExitCode}}' "$id-serve")
case $code in
    0 | 143) ;;
    *) "$DOCKER" logs "$id-serve" 2>&1 | tail -n 20 >&2; fail "serving-python exited with $code on docker stop" ;;
esac
[ $stop_ms -lt $(((STOP_TIMEOUT - 1) * 1000)) ] || fail "docker stop took $stop_ms ms: the server ignored SIGTERM"
log "stopped in $stop_ms ms with exit status $code"
"$DOCKER" rm --volumes "$id-serve" >/dev/null

# 4. docker-compose.yml: the server and its one-shot client.
step "docker-compose.yml"
if "$DOCKER" compose version >/dev/null 2>&1; then
    compose=("$DOCKER" compose)
elif command -v docker-compose >/dev/null || { may_install && _apt_install docker-compose; }; then
    compose=(docker-compose)
fi
if [ ${#compose[@]} = 0 ]; then
    log "no docker compose here; docker-compose.yml not run (CI=true installs it)"
else
    compose+=(--project-name "$id" --file docker-compose.yml)
    ports=$("$WGAN_TF_PYTHON" -c 'import socket
s = [socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
    mkdir -m 0777 "$work/compose-out"
    export WGAN_TF_SERVER=serving-python WGAN_TF_TAG=$TAG PYTHON_IMAGE WGAN_TF_OUT=$work/compose-out \
        WGAN_TF_GRPC_PORT=${ports% *} WGAN_TF_REST_PORT=${ports#* } HOST_UID=10001 HOST_GID=10001
    "${compose[@]}" config --quiet || fail "docker-compose.yml does not validate"
    "${compose[@]}" up --no-build --exit-code-from client >"$work/compose.log" 2>&1 || {
        quiet_tf <"$work/compose.log" | tail -n 30 >&2
        fail "docker compose up: the client did not get its grid"
    }
    [ -s "$work/compose-out/grid.png" ] || fail "the compose client wrote no grid.png"
    log "compose client wrote grid.png ($(stat -c %s "$work/compose-out/grid.png") bytes)"

    # 5. Two training containers, one job: 2 iterations, then the rerun resumes to 4.
    multi=("${compose[@]}" --profile multi-worker)
    services=(train-chief train-worker)
    for steps in 2 4; do
        step "multi-worker profile: a chief and a worker train to iteration $steps"
        WGAN_TF_STEPS=$steps "${multi[@]}" up --no-build --force-recreate "${services[@]}" \
            >"$work/multi-worker-$steps.log" 2>&1 || {
            quiet_tf <"$work/multi-worker-$steps.log" | tail -n 30 >&2
            fail "docker compose up of the multi-worker profile"
        }
        for service in "${services[@]}"; do
            container=$("$DOCKER" ps --all --quiet --filter "label=com.docker.compose.project=$id" \
                --filter "label=com.docker.compose.service=$service")
            code=$("$DOCKER" inspect --format '{{.State.ExitCode}}' "$container")
            "$DOCKER" logs "$container" >"$work/$service-$steps.log" 2>&1
            [ "$code" = 0 ] || { quiet_tf <"$work/$service-$steps.log" | tail -n 20 >&2; fail "$service exited $code"; }
        done
    done
    grep -q "starting of 2 on 2 workers x 1 CPU device (this is /job:chief/" "$work/train-chief-2.log" ||
        fail "the chief did not train as one of 2 workers: $(quiet_tf <"$work/train-chief-2.log" | tail -n 3)"
    grep -q "resuming at generator iteration 2 of 4 on 2 workers" "$work/train-chief-4.log" ||
        fail "the rerun did not resume at iteration 2: $(quiet_tf <"$work/train-chief-4.log" | tail -n 3)"
    rows=$("$DOCKER" run --rm -v "${id}_runs:/runs" --entrypoint cut "$train" -d, -f1 /runs/multi-worker/metrics.csv | tr '\n' ' ')
    [ "$rows" = "generator_iteration 1 2 3 4 " ] || fail "metrics.csv of the multi-worker run: $rows"
    log "multi-worker: 2 containers trained 2 iterations, then resumed to 4; metrics.csv rows: $rows"
fi

step "done"
for image in "$PYTHON_IMAGE" "$train" "$serve"; do
    log "$(printf '%-36s %6.0f MB' "$image" "$("$DOCKER" image inspect --format '{{.Size}}' "$image")e-6")"
done
echo "PASS docker test in $(($(date +%s) - t_start)) s"
