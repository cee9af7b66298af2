# promptd: a prompt-compiling OpenAI-compatible gateway.
#   docker build -t promptd .
#   docker run -p 8080:8080 -v "$PWD/config:/etc/promptd:ro" -e OPENAI_API_KEY promptd
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/promptd
COPY pyproject.toml README.md ./
COPY promptd ./promptd
RUN pip install . && useradd --system --uid 10001 --no-create-home promptd

# The sample config; mount your own directory (promptd.toml + prompts/) over it.
COPY config /etc/promptd

USER 10001
EXPOSE 8080
# The health check assumes port 8080; change it with server.port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

# Inside a container, listen on every interface so the port can be published.
CMD ["promptd", "serve", "/etc/promptd", "--host", "0.0.0.0"]
