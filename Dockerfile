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
USER richhf
EXPOSE 8000
CMD ["gunicorn", "richhf_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
