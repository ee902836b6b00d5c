#!/usr/bin/env bash
# Make a local Debian bookworm image with python3, python3-venv and python3-pip, for building
# the Dockerfile where no image can be pulled:
#
#     docker/build-base-image.sh                # -> wgan-tf/bookworm-python:local
#     docker build --build-arg PYTHON_IMAGE=wgan-tf/bookworm-python:local --target train .
#
# It runs debootstrap (as root) against a Debian mirror and `docker import`s the result. The
# host's CA bundle is copied in and trusted (certificates the Debian bundle lacks are added
# with update-ca-certificates, and pip is pointed at the system bundle), so pip and apt work
# inside the image behind the same TLS-inspecting proxy as the host.
#
# Idempotent: the image is labelled with a hash of its inputs (recipe version, suite, mirror,
# packages, CA bundle) and is rebuilt only when one of them changes, or with --force.
#
# Environment: BASE_IMAGE (tag), DEBIAN_SUITE (bookworm), DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR,
# CA_BUNDLE, BASE_PIP_INDEX_URL (a PyPI mirror for pip in the image, written to its pip.conf),
# DEBOOTSTRAP_CACHE (where .debs are kept between runs), CI / WGAN_TF_DOCKER_INSTALL (allow
# installing docker.io and debootstrap with apt). Exit status 3: Docker cannot run here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=docker/lib.sh
. "$here/lib.sh"

BASE_IMAGE=${BASE_IMAGE:-wgan-tf/bookworm-python:local}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
DEBOOTSTRAP_CACHE=${DEBOOTSTRAP_CACHE:-/var/cache/wgan-tf-debootstrap}
PACKAGES=python3,python3-venv,python3-pip,ca-certificates
RECIPE=1  # bump when what this script puts in the image changes
force=0

for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
        *) echo "usage: $0 [--force]" >&2; exit 2 ;;
    esac
done

ensure_docker || exit $?

[ -r "$CA_BUNDLE" ] || { log "no CA bundle at $CA_BUNDLE; the image will trust Debian's only"; CA_BUNDLE=/dev/null; }
inputs=$( {
    echo "$RECIPE $DEBIAN_SUITE $DEBIAN_MIRROR ${DEBIAN_SECURITY_MIRROR:-} $PACKAGES ${BASE_PIP_INDEX_URL:-}"
    cat "$CA_BUNDLE"
} | sha256sum | cut -c1-16)

current=$("$DOCKER" image inspect --format '{{index .Config.Labels "org.wgan-tf.base-inputs"}}' "$BASE_IMAGE" 2>/dev/null || true)
if [ $force = 0 ] && [ "$current" = "$inputs" ]; then
    log "$BASE_IMAGE is up to date (inputs $inputs)"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "$0: debootstrap needs root; run it with sudo" >&2
    exit 1
fi
ensure_debootstrap || exit $?

rootfs=$(mktemp -d /var/tmp/wgan-tf-rootfs.XXXXXX)
trap 'rm -rf --one-file-system "$rootfs"' EXIT
mkdir -p "$DEBOOTSTRAP_CACHE"

log "debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR with $PACKAGES"
debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$DEBOOTSTRAP_CACHE" \
    "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"

# Updates and security fixes for anyone who runs apt-get upgrade in a derived image.
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb $security_mirror $DEBIAN_SUITE-security main
EOF

# Trust what the host trusts: add the host's certificates that Debian's bundle lacks (a
# proxy's CA, a company root) as local CAs, so update-ca-certificates keeps them on upgrades.
local_ca=$rootfs/usr/local/share/ca-certificates/host
mkdir -p "$local_ca"
awk -v known="$rootfs/etc/ssl/certs/ca-certificates.crt" -v out="$local_ca" '
    function body(line) { gsub(/[ \t\r]/, "", line); return line }
    BEGIN {
        while ((getline line < known) > 0) {
            if (line ~ /-----BEGIN CERTIFICATE-----/) { b = "" }
            else if (line ~ /-----END CERTIFICATE-----/) { seen[b] = 1 }
            else { b = b body(line) }
        }
    }
    /-----BEGIN CERTIFICATE-----/ { pem = ""; b = ""; inside = 1 }
    inside { pem = pem $0 "\n"; if ($0 !~ /-----/) b = b body($0) }
    /-----END CERTIFICATE-----/ {
        inside = 0
        if (!(b in seen)) { seen[b] = 1; f = sprintf("%s/host-%03d.crt", out, ++n); printf "%s", pem > f; close(f) }
    }
    END { print n + 0 }
' "$CA_BUNDLE" >"$rootfs/.added"
added=$(cat "$rootfs/.added")
rm -f "$rootfs/.added"
log "host CA certificates added to the image: $added"
chroot "$rootfs" update-ca-certificates >"$rootfs/.ca.log" 2>&1 || { cat "$rootfs/.ca.log" >&2; exit 1; }
rm -f "$rootfs/.ca.log"

# pip's own certifi bundle would not know the added CAs; the system bundle does.
{
    echo "[global]"
    echo "cert = /etc/ssl/certs/ca-certificates.crt"
    if [ -n "${BASE_PIP_INDEX_URL:-}" ]; then echo "index-url = $BASE_PIP_INDEX_URL"; fi
} >"$rootfs/etc/pip.conf"

# What a container never needs.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/usr/lib/python3" -name __pycache__ -type d -prune -exec rm -rf {} +
# Keep the image's identity stable: no host name, no machine id.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/etc/hostname"

log "importing as $BASE_IMAGE"
tar --numeric-owner --xattrs -C "$rootfs" -c . |
    "$DOCKER" import \
        --change "LABEL org.wgan-tf.base-inputs=$inputs" \
        --change "LABEL org.opencontainers.image.description=\"Debian $DEBIAN_SUITE with python3, python3-venv, python3-pip and the builder CA bundle\"" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        --message "debootstrap $DEBIAN_SUITE $PACKAGES" \
        - "$BASE_IMAGE" >/dev/null
"$DOCKER" run --rm "$BASE_IMAGE" python3 -c 'import ensurepip, ssl, venv; print("python", __import__("sys").version.split()[0])' >&2
log "$BASE_IMAGE: $("$DOCKER" image inspect --format '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
