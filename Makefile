# The two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
PORT ?= 8500
SAVED_MODELS ?= saved_models
# The demo: WGAN-GP's DCGAN on the built-in digits at 16x16 (they are 8x8 at source), 1000
# generator iterations: recognisable digits in about 5 minutes on 2 CPU cores. (The docs test
# runs it with DEMO_STEPS=2.)
DEMO_STEPS ?= 1000
DEMO_TRAIN := --dataset digits --image-size 16 --channels 1 --penalty gp \
	--steps $(DEMO_STEPS) --log-every 50 --sample-every 250 --checkpoint-every 250 --seed 0

.PHONY: install demo saved-model saved-model-flowers test test-python clean
.DEFAULT_GOAL := demo

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# kserve: test-only, for its InferenceService model (tests/test_deploy.py). Without its
	# dependencies, which would replace the protobuf TensorFlow 2.21 needs and add a model server
	# (fastapi, pandas, ...); the test uses its generated models alone.
	$(BIN)/pip install --quiet --no-deps kserve==0.21.0
	touch $@

demo: install
	$(BIN)/wgan-tf train $(DEMO_TRAIN) --out $(DEMO)/run
	rm -rf $(DEMO)/saved_models
	$(BIN)/wgan-tf export $(DEMO)/run --out $(DEMO)/saved_models/wgan
	$(BIN)/wgan-tf serve --model-base-path $(DEMO)/saved_models/wgan --port $(PORT) & \
	server=$$!; trap 'kill -TERM $$server 2>/dev/null; wait $$server' EXIT; \
	$(BIN)/wgan-tf generate --server localhost:$(PORT) --num 64 --seed 0 \
		--out $(DEMO)/samples.png --wait 120
	@echo "demo: samples asked over gRPC are in $(DEMO)/samples.png;" \
		"training grids in $(DEMO)/run/samples/"

# The committed model, saved_models/wgan/1/: the demo's generator, trained from the demo's fixed
# seed and exported (tests/test_saved_model.py checks that it loads, serves and is what this makes).
saved-model: install
	$(BIN)/wgan-tf train $(DEMO_TRAIN) --quiet --out $(DEMO)/run
	rm -rf $(SAVED_MODELS)/wgan/1
	$(BIN)/wgan-tf export $(DEMO)/run --out $(SAVED_MODELS)/wgan --version 1

# The committed colour model, saved_models/flowers/1/: the flowers photographs
# (../shared/data/flowers) at 64x64 with --recipe fast (one critic step, lazy penalty, two
# time-scale Adam, DiffAugment, generator EMA, a DCGAN of 32 base filters in bfloat16) and the
# projection critic, conditional on the five kinds of flower, 20,000 generator iterations from seed 0:
# experiments/photos.py's flowers64 run (about 77 minutes of 2 quiet CPU cores; rerunning resumes
# it), exported from its raw generator, which measured ahead of its EMA at the end of this run
# (docs/RESULTS.md, "The colour model that is served"). tests/test_saved_model.py checks that it
# loads, serves, is small and obeys the class; it does not retrain it.
FLOWERS_RUNS ?= runs/photos
saved-model-flowers: install
	$(BIN)/python experiments/photos.py train --only flowers64 --runs $(FLOWERS_RUNS)
	rm -rf $(SAVED_MODELS)/flowers/1
	$(BIN)/wgan-tf export $(FLOWERS_RUNS)/flowers64 --generator raw --out $(SAVED_MODELS)/flowers \
	  --version 1

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test-python: install
	$(BIN)/python -m pytest tests -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$status

# The container test builds the images and asks a served model for images (docker/test.sh);
# it says SKIP where Docker cannot run, and in CI (CI=true) installs and starts Docker itself.
test: test-python
	$(MAKE) docker-test

clean:
	rm -rf $(DEMO) .pytest_cache

include docker/docker.mk
