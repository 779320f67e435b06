# Conversa: one image for the Ray head (dashboard, Serve app, migrations) and the Ray workers.
#   docker build -t conversa .      then see docker-compose.yml and deploy/README.md
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Ray runs fine without root; the uid owns Ray's temp dir and the data dir (named volumes copy
# this ownership the first time they are mounted).
RUN useradd --create-home --uid 1000 conversa \
    && mkdir -p /tmp/ray /var/lib/conversa \
    && chown conversa:conversa /tmp/ray /var/lib/conversa

WORKDIR /app

# Dependencies first, in their own layer: stub packages let pip resolve the project without the
# source, so editing the code does not reinstall Ray. Editable on purpose: the migrations are
# found next to the package (engine/db/migrate.py: MIGRATIONS_DIR), so the code stays in /app.
COPY pyproject.toml README.md ./
RUN mkdir engine serve_app \
    && touch engine/__init__.py serve_app/__init__.py \
    && pip install -e . \
    && rm -r engine serve_app

COPY engine engine
COPY serve_app serve_app
COPY migrations migrations
COPY --chmod=755 deploy/entrypoint.sh /usr/local/bin/conversa-entrypoint

USER conversa
ENV DATA_DIR=/var/lib/conversa

# 8000 webhooks + operator API (HAProxy), 8265 Ray dashboard, 6379 Ray GCS (workers join it),
# 8090 Ray's metrics export port (Prometheus scrapes every node's).
EXPOSE 8000 8265 6379 8090

ENTRYPOINT ["conversa-entrypoint"]
CMD ["head"]
