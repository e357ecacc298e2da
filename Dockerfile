# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt requirements-modeling.txt ./
# torch==2.13.0 is pinned. Point PIP_EXTRA_INDEX_URL at a CPU-only wheel index to keep the
# image small; without it pip takes the default (CUDA) build.
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install -r requirements.txt
COPY . .
RUN DJANGO_SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" python manage.py collectstatic --noinput -v 0
RUN useradd --create-home richhf && mkdir -p /app/var && chown -R richhf /app/var
# numba caches the compiled rasteriser (modeling/heatmaps_numba.py) here; compiled once at
# build time, so no worker pays the ~4.5 s compile on its first aggregate.
ENV NUMBA_CACHE_DIR=/app/numba-cache
RUN mkdir -p /app/numba-cache && python -c "from modeling.heatmaps import RasterGeometry as G, rasterise_votes as r; [v.values() for v in r([([[[0.5, 0.5]]], G(2, 2, 2, 2, 0.5))])]" \
    && chown -R richhf /app/numba-cache
USER richhf
EXPOSE 8000
CMD ["gunicorn", "richhf_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
