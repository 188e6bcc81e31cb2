# syntax=docker/dockerfile:1
# One image for every platewatch component (`platewatch serve <component>`), plus a Triton image with
# the plate models. Build: `docker build -t platewatch .` and `docker build --target triton -t platewatch-triton .`
# (docker-compose.yml builds both).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.08-py3

# --- Python dependencies from the lock (exact, tested set), in a virtual environment ---
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/platewatch
COPY requirements.lock /tmp/requirements.lock
RUN /opt/platewatch/bin/pip install --no-deps -r /tmp/requirements.lock

# --- the application: the source tree at /app (settings resolve deploy/ files relative to it) ---
FROM deps AS build
WORKDIR /app
COPY pyproject.toml ./
COPY services ./services
COPY deploy ./deploy
ENV PYTHONPATH=/app

# --- Triton model repository: the wire graphs (services/inference/wire_models.py: PP-OCRv4 weights from
# the rapidocr wheel, our CRNN and classifier, each with its pre- and post-processing inside the graph)
# for Triton's onnxruntime backend: /models on the GPU with the exact fp32 detector build, and
# /models-cpu (Helm `triton.gpus: 0`) with the int8 build, which only onnxruntime's CPU kernels run.
FROM build AS models
RUN /opt/platewatch/bin/python -m services.cli triton repository /models \
        --backend onnxruntime --instance-kind gpu --det-precision fp32 \
    && /opt/platewatch/bin/python -m services.cli triton repository /models-cpu \
        --backend onnxruntime --instance-kind cpu --det-precision int8

# --- Triton serving plate_det, plate_rec_crnn, plate_rec and plate_cls (onnxruntime backend: CUDA on
# the GPU; no Python in the serving path) ---
FROM ${TRITON_IMAGE} AS triton
COPY --from=models /models /models
COPY --from=models /models-cpu /models-cpu
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/models", "--metrics-port=8002", "--allow-metrics=true"]

# --- runtime image for every component (default target) ---
FROM ${PYTHON_IMAGE} AS platewatch
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl libglib2.0-0 libgl1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/platewatch --create-home platewatch
COPY --from=deps /opt/platewatch /opt/platewatch
COPY --from=build /app /app
RUN printf '#!/bin/sh\nexec /opt/platewatch/bin/python -m services.cli "$@"\n' > /usr/local/bin/platewatch \
    && chmod 755 /usr/local/bin/platewatch
ENV PATH=/opt/platewatch/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PLATEWATCH_VAR_DIR=/var/lib/platewatch \
    PLATEWATCH_METRICS_PORT=9100
USER 10001
WORKDIR /var/lib/platewatch
EXPOSE 9100
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9100/healthz || exit 1
ENTRYPOINT ["platewatch"]
CMD ["serve", "--help"]
