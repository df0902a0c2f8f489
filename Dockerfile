# The SOC toolkit as an image, for the search-cluster variant (docker-compose.yml, docker-compose.opensearch.yml):
# `soc serve` by default; the same image runs `soc worker` and the one-shot docker/setup.sh.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# nmap: the ports collector; pango + Noto fonts: WeasyPrint's PDF reports (every Vietnamese diacritic);
# curl: the health checks and docker/setup.sh.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nmap libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-core curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY soc/ soc/
COPY checks/ checks/
COPY collectors/ collectors/
COPY drills/ drills/
COPY reports/ reports/
COPY playbooks/ playbooks/
# The drill scenario library is read from playbooks/ beside the installed packages (soc/services/drills.py:
# parents[2] of the module), so it goes into site-packages next to them.
RUN pip install --no-cache-dir . \
    && cp -r playbooks "$(python -c 'import pathlib, soc; print(pathlib.Path(soc.__file__).resolve().parents[1])')/" \
    && cd / && rm -rf /src

COPY docker/setup.sh /usr/local/bin/soc-setup
RUN chmod 755 /usr/local/bin/soc-setup \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/soc --create-home --shell /usr/sbin/nologin soc \
    && mkdir -p /etc/soc /opt/soc/kibana

USER soc
WORKDIR /var/lib/soc
ENV SOC_DB=/var/lib/soc/soc.db
VOLUME ["/var/lib/soc"]
EXPOSE 8000
CMD ["soc", "serve", "--host", "0.0.0.0", "--port", "8000"]
