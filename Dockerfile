# heimdall-synth worker / CLI image: the core install (no plots/export/train extras: a
# worker does not need them; `heimdall-synth export` here says which extra to add). The
# repository is installed in editable mode so the package finds its sql/ and alembic/
# directories next to it (/app). A worker runs `python -m worker` (environment settings
# only); the entry point is the admin CLI (`db upgrade`, `dataset create`, ...).
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/numba-cache PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY heimdall_synth ./heimdall_synth
COPY sql ./sql
COPY alembic ./alembic
RUN pip install -e . && useradd --system --uid 10001 heimdall
USER heimdall
ENTRYPOINT ["heimdall-synth"]
CMD ["worker", "run"]
