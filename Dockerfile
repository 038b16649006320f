# Sound Sentry's MQTT service: `sound-sentry serve` in a container (see README, "The MQTT service").
#   docker build -t sound-sentry .
#   docker run -v ./sound-sentry.yaml:/config/sound-sentry.yaml:ro sound-sentry
FROM python:3.13-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY custom_components ./custom_components
# onnxruntime (glibc wheels for amd64 and arm64) runs the model faster than the NumPy runtime.
RUN pip install --no-cache-dir ".[service,onnxruntime]" && rm -rf /src
WORKDIR /config
USER nobody
ENTRYPOINT ["sound-sentry", "serve"]
CMD ["--config", "/config/sound-sentry.yaml"]
