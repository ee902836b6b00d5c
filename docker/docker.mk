# Docker targets, included by the Makefile. Commands, images and what the test checks:
# docker/README.md. tests/test_dockerfile.py (part of the pytest suite) needs no Docker.
#
#   make docker-base   the local Debian bookworm + Python image (debootstrap, as root; no pull)
#   make docker-test   build `train` and `serving-python` on it and run them for real. Outside
#                      CI it skips (exit 0, one SKIP line) where Docker cannot run; with CI=true
#                      it installs docker.io and starts dockerd if need be, and fails otherwise.

# The host Python the test drives the containers with (it needs wgan_tf and its client).
DOCKER_TEST_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: docker-base docker-test

docker-base:
	docker/build-base-image.sh

docker-test:
	WGAN_TF_PYTHON=$(DOCKER_TEST_PYTHON) docker/test.sh
