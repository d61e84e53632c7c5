# syntax=docker/dockerfile:1
# Gateway image (the default, last target) and the reference agencies (target `sandbox`):
#   docker build -t gateway .
#   docker build --target sandbox -t gateway-sandbox .
# The gateway runs in production mode: mount its signing keys at /srv/var/keys and its
# connector manifests where GATEWAY_CONNECTORS_DIR points, and run `gateway db upgrade`
# once per release before starting it.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY connectors connectors
COPY schema schema
COPY policies policies
COPY keys keys
COPY sandbox sandbox
COPY client client
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./client '.[sandbox]'

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /srv --shell /usr/sbin/nologin gateway
WORKDIR /srv

FROM runtime AS sandbox
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels 'lienthong-gateway[sandbox]' && rm -rf /wheels
USER gateway
# One agency per container: `population` (port 8101, the default) or
# `business --port 8102` with SANDBOX_HEALTH_PORT=8102.
ENV SANDBOX_HOST=0.0.0.0 SANDBOX_HEALTH_PORT=8101
EXPOSE 8101 8102
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['SANDBOX_HEALTH_PORT'], timeout=2).status != 200)"
ENTRYPOINT ["python", "-m", "sandbox"]
CMD ["population"]

FROM runtime AS gateway
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels lienthong-gateway && rm -rf /wheels \
 && mkdir -p /srv/var && chown gateway:gateway /srv/var
USER gateway
ENV GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8000 GATEWAY_ENVIRONMENT=production
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["gateway", "serve"]
