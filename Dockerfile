# The char-LSTM text-generation server with its bundled model, on CPU.
#
#   docker build -t char-lstm .                      (or: make docker-image, which also works offline)
#   docker run --rm -p 8000:8000 char-lstm           → http://127.0.0.1:8000
#   docker run --rm --network host -e UVICORN_PORT=8001 char-lstm   (host network, another port)
#   docker buildx build --platform linux/arm64 -t char-lstm:arm64 --load .     (make docker-image-arm64)
#
# The same file builds for linux/amd64 and linux/arm64 (ARM servers, Apple-silicon Docker):
# requirements.txt's markers pick TensorFlow's build and leave out tbb where it has no wheel, and
# nothing below names an architecture. deploy/ runs replicas of this image (docs/scaling.md).
#
# Settings are environment variables: CHARLSTM_* for the app (see the README), UVICORN_PORT for
# the port. Runs as uid 10001 and works with --read-only (it writes nothing but /tmp).

# ---- builder: the venv with the runtime set, and the server's files; only those two are kept ----
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Left out of the image (it must stay under 1.5 GB): tensorboard (training only; tensorflow-cpu does
# not need it) with what it pulls in; libclang (62 MB; a tensorflow dependency for its own code
# generators, imported nowhere in tensorflow or keras at run time); pip itself; tensorflow/include
# (C++ headers for compiling custom ops, ~290 MB). tests/test_docker.py proves the server runs without.
# TensorFlow's and llvmlite's shared libraries ship with their full symbol tables: strip keeps the
# dynamic symbols they are linked through and drops the rest (788 → 583 MB for libtensorflow_cc,
# 179 → 160 MB for libllvmlite, measured on the pinned wheels), which keeps the image under 1.5 GB
# with numba. binutils lives in this stage only.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN grep -v '^tensorboard==' /tmp/requirements.txt > /tmp/requirements-serve.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-serve.txt \
    && /opt/venv/bin/python -m pip uninstall --yes libclang pip \
    && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include \
    && find /opt/venv/lib/python3.11/site-packages/tensorflow /opt/venv/lib/python3.11/site-packages/llvmlite \
         -name '*.so*' -type f -exec strip --strip-unneeded {} +

# The server's code, templates and bundled model, readable by every uid whatever their modes in the
# checkout (a model directory saved through mkdtemp is 0700), writable by none but root.
COPY app/ /app/app/
COPY model/ /app/model/
COPY templates/ /app/templates/
RUN chmod -R a+rX,go-w /app
# The step's, the sampler's, the burst's and the Gates view's kernels (model/cells/kernel.py,
# model/sampling/draw.py, model/engine/burst.py, the gated cells' gate_values; numba) compiled
# once here: the server loads them from this cache in well under a second instead of compiling them at
# start-up.  numba wants a writable cache directory and the container runs read-only, so
# model.runtime.configure() copies it from
# CHARLSTM_NUMBA_CACHE_SEED to NUMBA_CACHE_DIR (/tmp) at start-up; a machine whose CPU differs from
# the builder's compiles once more, into that copy.
WORKDIR /app
RUN NUMBA_CACHE_DIR=/app/numba-cache /opt/venv/bin/python -c "from model.runtime.jit import ready_all; \
    import model.cells.kernel as k, model.sampling.draw as d, model.engine.burst as b; \
    import model.cells.lstm as l, model.cells.gru as g; \
    assert ready_all(k, d, b, l, g) > 0" \
    && chmod -R a+rX,go-w /app/numba-cache \
    && rm -rf /opt/venv/lib/python3.11/site-packages/numba/tests

# ---- final: the base image, the venv, the server code and the bundled model ----
FROM python:3.11-slim

# uvicorn reads UVICORN_* for options not given in CMD: the port stays overridable without a shell.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=1 \
    KERAS_HOME=/tmp/.keras \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    CHARLSTM_NUMBA_CACHE_SEED=/app/numba-cache \
    CHARLSTM_MODELS_DIR=/app/model/pretrained \
    UVICORN_PORT=8000

# A fixed uid/gid so file ownership and runAsNonRoot policies are predictable.
RUN groupadd --gid 10001 app \
    && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
# Owned by root: the server cannot change its own code or model.
COPY --from=builder /app /app
WORKDIR /app

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('UVICORN_PORT', '8000'), timeout=4)"]

# docker stop sends SIGTERM and kills after 10 s. The server ends open streams at once; requests get
# at most 4 s, because the process then needs 2-6 s more to exit (TensorFlow's teardown, measured on
# 2 busy cores) and must be gone, with exit code 0, before the 10 s are up.  --http: the protocol that
# cuts off slow and idle clients (app/connection.py; CHARLSTM_HEADER_TIMEOUT_S and the others).
CMD ["uvicorn", "app.main:app", "--http", "app.connection:GuardedHttpProtocol", "--host", "0.0.0.0", \
     "--timeout-graceful-shutdown", "4"]
