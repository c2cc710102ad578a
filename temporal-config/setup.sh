#!/bin/sh
# One-shot set-up of the compose Temporal cluster for Jarvis, run by the `temporal-setup` service:
#   1. waits (up to SETUP_TIMEOUT_S, default 120 s) until the server reports SERVING;
#   2. creates the namespace if it is missing;
#   3. registers every search attribute listed in search-attributes.json (the one list; the code's
#      copy in src/temporal/search-attributes.ts is kept equal by test/unit/compose.test.ts).
# Idempotent: on a cluster that is already set up it changes nothing and exits 0. It fails (exit 1)
# on timeout, on a malformed list, or when an attribute exists with another type (a real conflict
# that re-running cannot fix).
# Needs the `temporal` CLI and `jq`, both in the temporalio/admin-tools image. POSIX sh.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${NAMESPACE_RETENTION:=72h}"
: "${SETUP_TIMEOUT_S:=120}"
: "${SEARCH_ATTRIBUTES_FILE:=$(dirname "$0")/search-attributes.json}"

log() { printf '[temporal-setup] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Every CLI call gets a timeout: an unreachable server must not hang the loop past the deadline.
cli() { temporal "$@" --address "$TEMPORAL_ADDRESS" --command-timeout 10s; }

deadline=$(($(date +%s) + SETUP_TIMEOUT_S))
# Sleeps before the next attempt, or fails once the deadline has passed.
retry_or_die() {
  [ "$(date +%s)" -lt "$deadline" ] || die "gave up after ${SETUP_TIMEOUT_S}s: $1"
  log "$1 ..."
  sleep 2
}
# wait_for WHAT CMD...: re-runs CMD quietly until it succeeds; on timeout shows its last error.
wait_for() {
  what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then "$@" >/dev/null || true; fi
    retry_or_die "waiting for $what"
  done
}

# --- the list -------------------------------------------------------------------------------
[ -r "$SEARCH_ATTRIBUTES_FILE" ] || die "cannot read $SEARCH_ATTRIBUTES_FILE"
jq -e '
  type == "array" and length > 0
  and all(.[]; (.name | type == "string" and test("^[A-Za-z][A-Za-z0-9_]*$"))
               and (.type | IN("Keyword", "Int", "Text", "Bool", "Double", "Datetime", "KeywordList")))
  and (map(.name) | length == (unique | length))
' "$SEARCH_ATTRIBUTES_FILE" >/dev/null ||
  die "$SEARCH_ATTRIBUTES_FILE must be a JSON array of unique {\"name\", \"type\"} objects"

# --- server and namespace -------------------------------------------------------------------
log "waiting for Temporal at $TEMPORAL_ADDRESS"
wait_for "Temporal at $TEMPORAL_ADDRESS" cli operator cluster health

ensure_namespace() {
  cli operator namespace describe --namespace "$TEMPORAL_NAMESPACE" && return 0
  # A failed create (e.g. someone else created it meanwhile) is settled by the describe after it.
  cli operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention "$NAMESPACE_RETENTION" \
    --description "Jarvis task runs" || true
  cli operator namespace describe --namespace "$TEMPORAL_NAMESPACE"
}
wait_for "namespace $TEMPORAL_NAMESPACE" ensure_namespace
# A new namespace is usable only once the frontend's namespace cache has it.
wait_for "namespace $TEMPORAL_NAMESPACE in the server's cache" \
  cli operator search-attribute list --namespace "$TEMPORAL_NAMESPACE"

# --- search attributes ----------------------------------------------------------------------
# Reads `search-attribute list --output json` on stdin; prints "Name Type" for each wanted
# attribute not registered yet; fails if one is registered with another type.
# ("KeywordList" is listed as INDEXED_VALUE_TYPE_KEYWORD_LIST, hence the CamelCase split.)
missing() {
  jq -r --slurpfile want "$SEARCH_ATTRIBUTES_FILE" '
    (.customAttributes // {}) as $have
    | $want[0][]
    | ("INDEXED_VALUE_TYPE_" + (.type | gsub("(?<a>[a-z])(?<b>[A-Z])"; "\(.a)_\(.b)") | ascii_upcase)) as $t
    | if $have[.name] == null then "\(.name) \(.type)"
      elif $have[.name] == $t then empty
      else error("\(.name) is registered as \($have[.name]), search-attributes.json says \(.type)")
      end'
}

# Loops until the server lists every attribute: a create can succeed before the list shows it,
# and creating an attribute that exists with the same type is a no-op on the server.
while :; do
  if ! have=$(cli operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" --output json); then
    retry_or_die "could not list search attributes"
    continue
  fi
  todo=$(printf '%s' "$have" | missing) || die "search attribute type conflict (see above)"
  if [ -z "$todo" ]; then
    break
  fi
  set --
  while read -r name type; do
    set -- "$@" --name "$name" --type "$type"
  done <<EOF
$todo
EOF
  log "registering in $TEMPORAL_NAMESPACE: $(printf '%s\n' "$todo" | sed 's/ /:/' | tr '\n' ' ')"
  if cli operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" "$@" >/dev/null; then
    retry_or_die "registered; waiting for the server to list them"
  else
    retry_or_die "create failed (a concurrent set-up or a cold namespace cache clears on its own)"
  fi
done

log "ready: namespace $TEMPORAL_NAMESPACE has search attributes $(jq -r 'map(.name) | join(", ")' "$SEARCH_ATTRIBUTES_FILE")"
