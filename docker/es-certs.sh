#!/bin/sh
# One-shot (service `certs` of docker-compose.yml, in the Elasticsearch image): a CA and the node's certificate
# for TLS on the HTTP and transport layers, made once with elasticsearch-certutil into the `certs` volume.
# The CA certificate is world-readable (the soc containers verify the cluster with it); the keys are not.
set -eu
cd /usr/share/elasticsearch
out=config/certs
if [ ! -f "$out/ca/ca.crt" ]; then
  echo "==> making the CA"
  bin/elasticsearch-certutil ca --silent --pem -out "$out/ca.zip"
  unzip -q -o "$out/ca.zip" -d "$out"
  rm -f "$out/ca.zip"
fi
if [ ! -f "$out/elasticsearch/elasticsearch.crt" ]; then
  echo "==> making the node certificate"
  cat > "$out/instances.yml" <<'YAML'
instances:
  - name: elasticsearch
    dns: [elasticsearch, localhost]
    ip: [127.0.0.1]
YAML
  bin/elasticsearch-certutil cert --silent --pem -out "$out/certs.zip" --in "$out/instances.yml" \
    --ca-cert "$out/ca/ca.crt" --ca-key "$out/ca/ca.key"
  unzip -q -o "$out/certs.zip" -d "$out"
  rm -f "$out/certs.zip"
fi
# Elasticsearch and Kibana run as uid 1000 in group 0: group-readable keys; the CA certificate for everyone.
chown -R root:root "$out"
find "$out" -type d -exec chmod 750 {} +
find "$out" -type f -exec chmod 640 {} +
chmod 755 "$out" "$out/ca"
chmod 644 "$out/ca/ca.crt"
echo "==> certificates ready"
