# shellcheck shell=bash
# Shared by docker/build-base-image.sh and docker/test.sh; source it, don't run it.
#
# ensure_docker makes a Docker engine usable, or says why not:
#   - a reachable engine is used as it is;
#   - an installed but stopped engine is started when we are root;
#   - docker.io (and debootstrap) are installed with apt and dockerd is started only when
#     CI=true or WGAN_TF_DOCKER_INSTALL=1: a developer's machine is not changed uninvited.
# It also picks a client that can drive BuildKit (the Dockerfile uses RUN --mount): one with
# the buildx plugin, or a pre-23 client (Debian's docker.io 20.10) with DOCKER_BUILDKIT=1.
# The result is in $DOCKER; the function returns 0 (ready), 3 (cannot run here) or 1 (broken).

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/wgan-tf-dockerd.log}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

is_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }

_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

_apt_install() {
    log "installing with apt: $*"
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_engine_up() { "${DOCKER:-docker}" info >/dev/null 2>&1; }

_start_dockerd() {
    command -v dockerd >/dev/null || return 1
    log "starting dockerd (log: $DOCKERD_LOG)"
    _as_root sh -c "nohup dockerd >>'$DOCKERD_LOG' 2>&1 &" || return 1
    for _ in $(seq 60); do
        _engine_up && return 0
        sleep 1
    done
    log "dockerd did not come up; last lines of $DOCKERD_LOG:"
    _as_root tail -n 20 "$DOCKERD_LOG" >&2 || true
    return 1
}

# Sets DOCKER to a client that builds with BuildKit.
_pick_client() {
    local c major
    for c in docker /usr/bin/docker; do
        command -v "$c" >/dev/null || continue
        if "$c" buildx version >/dev/null 2>&1; then DOCKER=$c; return 0; fi
        major=$("$c" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
        if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
            DOCKER=$c
            export DOCKER_BUILDKIT=1
            return 0
        fi
    done
    return 1
}

may_install() { is_ci || [ "${WGAN_TF_DOCKER_INSTALL:-0}" = 1 ]; }

ensure_docker() {
    if _pick_client && _engine_up; then
        :
    elif may_install; then
        if ! command -v dockerd >/dev/null || ! _pick_client; then
            _apt_install docker.io || { log "could not install docker.io"; return 1; }
        fi
        _pick_client || { log "no Docker client that can use BuildKit"; return 1; }
        _engine_up || _start_dockerd || return 1
    else
        if ! _pick_client; then
            log "no Docker client that can use BuildKit (need the buildx plugin, or Debian's docker.io);" \
                "set CI=true or WGAN_TF_DOCKER_INSTALL=1 to install docker.io"
            return 3
        fi
        if ! _engine_up && ! { [ "$(id -u)" = 0 ] && _start_dockerd; }; then
            log "no reachable Docker engine (not running, or no access to its socket) and none can be started here;" \
                "set CI=true or WGAN_TF_DOCKER_INSTALL=1 to install and start it"
            return 3
        fi
    fi
    log "docker: $("$DOCKER" version --format 'client {{.Client.Version}}, engine {{.Server.Version}}' 2>/dev/null)" \
        "($DOCKER${DOCKER_BUILDKIT:+, DOCKER_BUILDKIT=1})"
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return 0
    if may_install; then _apt_install debootstrap && return 0; return 1; fi
    log "debootstrap is not installed (apt-get install debootstrap, or set WGAN_TF_DOCKER_INSTALL=1)"
    return 3
}

# Build arguments that carry a proxy into RUN steps (Docker predefines these ARGs).
proxy_build_args() {
    local v
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        if [ -n "${!v:-}" ]; then printf -- '--build-arg\n%s=%s\n' "$v" "${!v}"; fi
    done
}
