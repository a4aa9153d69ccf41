# The few commands people type. Each sets up what it needs first and is fast when already set up.
#   make serve   install the runtime set into .venv and serve the bundled model on 127.0.0.1:8000
#   make test    install the dev set (and Debian's chromium, Docker engine), lint, run every test
#   make train   train the bundled Shakespeare model from ../shared/data/tinyshakespeare.txt
#   make bench   print the benchmark tables (engine, HTTP, mixed load); installs the dev set (its HTTP client)
#   make lint    ruff + mypy

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR := model/pretrained/shakespeare
CORPUS ?= ../shared/data/tinyshakespeare.txt
HOST ?= 127.0.0.1
PORT ?= 8000
IMAGE ?= char-lstm:latest

.PHONY: serve test lint bench train docker-image docker-run chromium docker-engine venv clean
.PHONY: docker-image-arm64 compose-up compose-down

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps: reinstall only when a requirements file changes.
$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

venv: $(VENV)/.runtime

# --http: the protocol that cuts off slow and idle clients (app/connection.py, CHARLSTM_*_TIMEOUT_S & co.)
serve: $(VENV)/.runtime
	@test -f $(MODEL_DIR)/model.keras || { echo "No bundled model at $(MODEL_DIR): run 'make train' first (about 3.5 hours on 2 cores)."; exit 1; }
	$(VENV)/bin/uvicorn app.main:app --http app.connection:GuardedHttpProtocol --host $(HOST) --port $(PORT) \
		--timeout-graceful-shutdown 10

# Browser tests need Debian's chromium; install it where missing (root, or sudo without a password).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
	  || echo "warning: could not install chromium; browser tests will be skipped"; }

# The Docker engine and a local python:3.11-slim stand-in where no registry can be reached.
docker-engine:
	@bash scripts/docker_engine.sh || echo "warning: no Docker engine could be started; docker tests will be skipped"

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(VENV)/.dev chromium docker-engine lint
	$(VENV)/bin/pytest

bench: $(VENV)/.dev  # bench/http.py's client (httpx) is in the dev set, on top of the runtime set
	$(PY) -m bench.engine
	$(PY) -m bench.http
	$(PY) -m bench.mixed
	$(PY) -m bench.cells
	$(PY) -m bench.reading

# The bundled model's four stages (docs/training.md): from scratch, then three fine-tuning cycles, each a warm
# restart from the stage before.  About 3.5 h on 2 cores.  A finished stage is not run again; an interrupted
# one resumes from its checkpoint when `make train` runs again.
STAGES := checkpoints/bundled
TRAIN := $(PY) -m training.train --corpus $(CORPUS) --name shakespeare
RECIPE := --locked-dropout --embedding-dropout 0.1 --weight-decay 0.05 --patience 4
$(STAGES)/1/model.keras: | $(VENV)/.runtime
	$(TRAIN) --out $(STAGES)/1 --work-dir $(STAGES)/work-1 --epochs 16 --dropout 0.3
$(STAGES)/2/model.keras: $(STAGES)/1/model.keras
	$(TRAIN) --out $(STAGES)/2 --work-dir $(STAGES)/work-2 --init-from $(STAGES)/1 --epochs 10 --dropout 0.35 $(RECIPE) --lr 1e-3 \
		--warmup-steps 100 --ema 0.997
$(STAGES)/3/model.keras: $(STAGES)/2/model.keras
	$(TRAIN) --out $(STAGES)/3 --work-dir $(STAGES)/work-3 --init-from $(STAGES)/2 --epochs 8 --dropout 0.4 $(RECIPE) --lr 7e-4 --ema 0.997
train: $(STAGES)/3/model.keras
	$(TRAIN) --out $(MODEL_DIR) --init-from $(STAGES)/3 --epochs 6 --dropout 0.35 $(RECIPE) --lr 5e-4 \
		--ema 0.998 --seq-len 256 --batch-size 32

docker-image: docker-engine
	bash scripts/docker_image.sh $(IMAGE)

docker-run:
	docker run --rm --network host -e UVICORN_PORT=$(PORT) $(IMAGE)

# The image for ARM servers and Apple-silicon Docker: needs the buildx plugin and an arm64 builder
# (a native ARM machine, or QEMU's binfmt handlers) and the official multi-arch python:3.11-slim
# (scripts/docker_base_image.sh's offline stand-in is amd64 only). Not run on the project's machines,
# which have neither (docs/scaling.md).
ARM64_IMAGE ?= char-lstm:arm64
docker-image-arm64:
	docker buildx build --platform linux/arm64 --network host -t $(ARM64_IMAGE) --load .

# Replicas behind nginx on this Docker host (deploy/docker-compose.yml; REPLICAS=N, LB_PORT=8080).
compose-up: docker-image
	bash scripts/docker_compose.sh
	APP_IMAGE=$(IMAGE) docker-compose -f deploy/docker-compose.yml up -d --build

compose-down:
	docker-compose -f deploy/docker-compose.yml down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
