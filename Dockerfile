# The API and the worker (one image, two commands): see docker-compose.yml and the README's "Deployment".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# durable-rules builds its C core from source.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY rules rules
COPY workflows workflows
COPY activities activities
COPY service service
COPY bench bench
COPY migrations migrations
RUN pip install . \
    && useradd --create-home --uid 10001 welfare \
    && install -d -o welfare -g welfare -m 700 /var/lib/welfare/evidence

# Run from the source tree: the migrations, templates and policy files are read from beside the code.
USER welfare
ENV API_HOST=0.0.0.0 \
    API_PORT=8000 \
    LOG_JSON=true \
    DATA_DIR=/tmp/welfare
EXPOSE 8000
CMD ["python", "-m", "service.run_api"]
