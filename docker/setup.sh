#!/bin/sh
# One-shot set-up of the search-cluster variant (docker-compose*.yml, service soc-setup), run once per start:
#   1. (Elasticsearch) set the kibana_system password, so Kibana can sign in to the cluster;
#   2. `soc store setup`: the index templates (reads the SOC_STORE__* settings);
#   3. (Elasticsearch) wait for Kibana, bounded in time, then import every saved-object file of
#      $SOC_KIBANA_DIR/*.ndjson (overwrite: re-running it is safe). Not on OpenSearch: the files are Kibana 8
#      objects (Lens, which OpenSearch Dashboards cannot import; even the data views carry Kibana 8 migration
#      versions, unknown to that Kibana 7.10 fork), so there it prints how to make the index pattern instead.
# Exits non-zero on the first failure, so `soc` and `soc-worker` (depends_on: service_completed_successfully)
# do not start on a half-made store.
set -eu

flavour=${SOC_STORE__FLAVOUR:-elasticsearch}
store_url=${SOC_STORE__URL:?SOC_STORE__URL is not set}
user=${SOC_STORE__USERNAME:-elastic}
password=${SOC_STORE__PASSWORD:?SOC_STORE__PASSWORD is not set}
ca=${SOC_STORE__CA_CERTS:-}
dashboards=${SOC_KIBANA_URL:-http://kibana:5601}
objects=${SOC_KIBANA_DIR:-/opt/soc/kibana}
timeout=${SOC_SETUP_TIMEOUT:-300}

say() { printf '==> %s\n' "$*"; }
fail() { printf 'soc-setup: %s\n' "$*" >&2; exit 1; }

# A value for a double-quoted line of a curl config file: backslash and double quote escaped.
quote() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }

# curl to the cluster: its CA when given, the store's user (the password through a config line on stdin, so it is
# not in the process list).
store_curl() {
  if [ -n "$ca" ]; then set -- --cacert "$ca" "$@"; fi
  printf 'user = "%s:%s"\n' "$(quote "$user")" "$(quote "$password")" | curl --config - -sS --max-time 30 "$@"
}

# Waits until `$1` answers HTTP 200 (asked with store_curl), at most $timeout seconds.
wait_for() {
  deadline=$(( $(date +%s) + timeout ))
  while :; do
    code=$(store_curl -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && fail "$1 did not answer 200 within ${timeout}s (last: ${code:-no answer})"
    sleep 5
  done
}

say "waiting for the cluster at $store_url"
wait_for "$store_url/_cluster/health?wait_for_status=yellow&timeout=5s"

if [ "$flavour" = elasticsearch ] && [ -n "${KIBANA_PASSWORD:-}" ]; then
  say "setting the kibana_system password"
  body=$(python3 -c 'import json, os; print(json.dumps({"password": os.environ["KIBANA_PASSWORD"]}))')
  code=$(store_curl -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$body" \
    "$store_url/_security/user/kibana_system/_password")
  [ "$code" = 200 ] || fail "setting the kibana_system password answered HTTP $code"
fi

say "soc store setup (index templates)"
soc store setup

if [ "$flavour" = opensearch ]; then
  say "không nhập dashboard: chúng dành cho Kibana; OpenSearch Dashboards: tự tạo index pattern soc-* / not imported: the dashboards are for Kibana; in OpenSearch Dashboards create the index pattern soc-* yourself"
  exit 0
fi

set -- "$objects"/*.ndjson
if [ ! -e "$1" ]; then
  say "no saved objects in $objects (*.ndjson): nothing to import"
  exit 0
fi

say "waiting for the dashboards at $dashboards"
wait_for "$dashboards/api/status"

for file in "$@"; do
  say "importing $(basename "$file")"
  answer=$(store_curl -X POST "$dashboards/api/saved_objects/_import?overwrite=true" -H 'kbn-xsrf: true' \
    --form "file=@$file") || fail "importing $file: no answer"
  case $answer in
    *'"success":true'*) ;;
    *) fail "importing $file was refused: $answer" ;;
  esac
done
say "done: $# saved-object file(s) imported"
