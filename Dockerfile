# wgan-tf images. Pick one with --target (docker/README.md has the full commands):
#
#   train           the package, ENTRYPOINT wgan-tf; volumes /data (datasets) and /runs (runs)
#                   --build-arg TF_VARIANT=gpu adds TensorFlow's CUDA libraries (and-cuda extra)
#   serving-python  the package's own server (`wgan-tf serve`): gRPC on 8500, REST and metrics on
#                   8501, serving/*.config, the models wgan and flowers baked in
#   serving         the official tensorflow/serving with the same models and serving/*.config
#
# Needs BuildKit (Docker 23+, or DOCKER_BUILDKIT=1 on 20.10) for RUN --mount, and builds only the
# stages a target needs: train and serving-python never pull tensorflow/serving. There is
# deliberately no "# syntax=" line: it would make BuildKit pull docker/dockerfile, which an
# air-gapped builder cannot.
#
# PYTHON_IMAGE may be any Debian-like image with python3, its venv module and pip, such as the
# one docker/build-base-image.sh makes without pulling anything.

ARG PYTHON_IMAGE=python:3.11-slim
# TF Serving must run the ops the exporter (tensorflow==2.21.0 in setup.py) writes.
ARG TF_SERVING_TAG=2.21.0

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS python
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_WARN_SCRIPT_LOCATION=1
# dumb-init as PID 1 passes docker stop's SIGTERM on and reaps children; it is a pinned wheel,
# so no apt is needed (the serving stage copies the same binary).
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    python3 -m venv "$VIRTUAL_ENV" \
 && pip install dumb-init==1.2.5.post1 \
 && groupadd --system --gid 10001 wgan \
 && useradd --system --uid 10001 --gid wgan --home-dir /home/wgan --create-home \
        --shell /usr/sbin/nologin wgan

# ---------------------------------------------------------------------------------------------
# Dependencies alone, from setup.py alone: editing the package does not reinstall TensorFlow.
# TensorFlow's C++ headers (430 MB, for compiling custom ops) are not needed to run it.
FROM python AS deps
ARG TF_VARIANT=cpu
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=bind,source=setup.py,target=/tmp/setup.py \
    set -eu; \
    case "$TF_VARIANT" in cpu) extra= ;; gpu) extra='[and-cuda]' ;; \
        *) echo "TF_VARIANT must be cpu or gpu, got $TF_VARIANT" >&2; exit 2 ;; esac; \
    mkdir /tmp/deps && cp /tmp/setup.py /tmp/deps/ \
 && pip install "/tmp/deps$extra" \
 && pip uninstall --yes wgan-tf \
 && rm -rf /tmp/deps "$VIRTUAL_ENV"/lib/python3*/site-packages/tensorflow/include

# The package's files alone (the [x] globs are optional files), so that a new export in
# saved_models/ does not rebuild the package, and the train and server images share it.
FROM scratch AS source
COPY setup.py setup.cf[g] pyproject.tom[l] MANIFEST.i[n] README.m[d] LICENS[E] /src/
COPY wgan_tf /src/wgan_tf
COPY docker/healthcheck.py /src/docker/

# The package itself, from a bind mount: no source layer stays in the image.
FROM deps AS app
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=bind,from=source,source=/src,target=/src,rw \
    pip install --no-deps /src \
 && install -D -m 0755 /src/docker/healthcheck.py /usr/local/bin/wgan-tf-healthcheck \
 && wgan-tf --help >/dev/null

# ---------------------------------------------------------------------------------------------
FROM app AS train
# MPLCONFIGDIR: writable also for `docker run --user $(id -u)`, whose uid has no home here.
ENV TFDS_DATA_DIR=/data/tensorflow_datasets \
    MPLCONFIGDIR=/tmp/matplotlib
RUN mkdir -p /data /runs && chown wgan:wgan /data /runs
VOLUME ["/data", "/runs"]
WORKDIR /runs
USER wgan
# Healthy while the run keeps writing (metrics, checkpoints, samples); a run silent for
# WGAN_TF_STALL_SECONDS (default 30 min) is reported unhealthy.
HEALTHCHECK --interval=5m --timeout=30s --start-period=30m --retries=1 \
    CMD ["wgan-tf-healthcheck", "progress", "/runs"]
ENTRYPOINT ["dumb-init", "--", "wgan-tf"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------
# The models of serving/models.config: wgan (the digits) and flowers (the colour model).
FROM app AS serving-python
ARG MODEL_DIR=saved_models/wgan
ARG FLOWERS_DIR=saved_models/flowers
COPY serving/models.config serving/batching.config serving/monitoring.config /etc/wgan-tf/
COPY ${MODEL_DIR} /models/wgan
COPY ${FLOWERS_DIR} /models/flowers
USER wgan
EXPOSE 8500 8501
# Healthy = ready: every model's newest version loaded and its warm-up replayed (the REST status
# of a model says AVAILABLE as soon as one version is, and the ports open before the models load).
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["wgan-tf-healthcheck", "ready", "http://127.0.0.1:8501/v2/health/ready"]
ENTRYPOINT ["dumb-init", "--", "wgan-tf", "serve"]
CMD ["--model-config-file", "/etc/wgan-tf/models.config", \
     "--model-config-file-poll-wait-seconds", "30", \
     "--enable-batching", "--batching-parameters-file", "/etc/wgan-tf/batching.config", \
     "--monitoring-config-file", "/etc/wgan-tf/monitoring.config", \
     "--port", "8500", "--rest-port", "8501"]

# ---------------------------------------------------------------------------------------------
# The model goes where tensorflow_model_server looks:
# --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} from the image's entrypoint, and the
# base_path in serving/models.config, which takes over once --model_config_file is given.
FROM tensorflow/serving:${TF_SERVING_TAG} AS serving
ARG MODEL_DIR=saved_models/wgan
ARG FLOWERS_DIR=saved_models/flowers
ENV MODEL_NAME=wgan \
    MODEL_BASE_PATH=/models
COPY --from=python /opt/venv/bin/dumb-init /usr/local/bin/dumb-init
COPY serving/models.config serving/batching.config serving/monitoring.config /etc/wgan-tf/
COPY ${MODEL_DIR} /models/wgan
COPY ${FLOWERS_DIR} /models/flowers
# A numeric user needs no useradd in the upstream image; the files above are world-readable.
USER 10001:10001
EXPOSE 8500 8501
# The image has bash but no curl or wget: ask the REST API for each model's status over
# /dev/tcp. A version is AVAILABLE once loaded and warmed up (the server opens its ports only
# once every model of models.config is; a version found later loads beside the serving one).
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["bash", "-c", "for m in wgan flowers; do exec 3<>/dev/tcp/127.0.0.1/${PORT:-8501} && printf 'GET /v1/models/%s HTTP/1.0\\r\\n\\r\\n' \"$m\" >&3 && grep -q '\"AVAILABLE\"' <&3 || exit 1; done"]
ENTRYPOINT ["/usr/local/bin/dumb-init", "--", "/usr/bin/tf_serving_entrypoint.sh"]
CMD ["--model_config_file=/etc/wgan-tf/models.config", \
     "--enable_batching=true", \
     "--batching_parameters_file=/etc/wgan-tf/batching.config", \
     "--monitoring_config_file=/etc/wgan-tf/monitoring.config", \
     "--enable_model_warmup=true"]
