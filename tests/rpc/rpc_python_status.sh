#!/usr/bin/env bash
# An independent gRPC client (Debian's python3-grpcio, stubs generated here from
# proto/mutual.proto) calls Status, DownloadAdapter and UploadMasked on the C toy
# coordinator, over mutual TLS (certificates from `mutual certs`) and in plaintext; the
# server must then stop cleanly on SIGTERM / SIGINT.
# usage: rpc_python_status.sh MUTUAL SERVER PROTO_DIR
set -euo pipefail
MUTUAL=$1 SERVER=$2 PROTO_DIR=$3
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
work=$PWD/python_status
rm -rf "$work"
mkdir -p "$work/stubs"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; true; }
trap cleanup EXIT

$PY -m grpc_tools.protoc -I "$PROTO_DIR" --python_out="$work/stubs" \
  --grpc_python_out="$work/stubs" "$PROTO_DIR/mutual.proto"

"$MUTUAL" -q certs init --dir "$work/fed" >/dev/null
"$MUTUAL" -q certs issue --dir "$work/fed" --org coordinator --server localhost \
  --server 127.0.0.1 >/dev/null
"$MUTUAL" -q certs issue --dir "$work/fed" --org operator >/dev/null

run() { # run MODE SIGNAL SERVER_ARGS... -- CLIENT_ARGS...
  local mode=$1 sig=$2
  shift 2
  local sargs=()
  while [ "$1" != "--" ]; do sargs+=("$1"); shift; done
  shift
  "$SERVER" "${sargs[@]}" >"$work/$mode.out" 2>"$work/$mode.err" &
  pid=$!
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$work/$mode.out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "FAIL $mode: the server did not start"; cat "$work/$mode.err"; exit 1; }
  if ! $PY "$HERE/status_client.py" "$work/stubs" "127.0.0.1:$port" "$@"; then
    echo "FAIL $mode: the python client failed"; cat "$work/$mode.err"; exit 1
  fi
  kill -"$sig" "$pid"
  local status=0
  wait "$pid" || status=$?
  pid=
  if [ "$status" -ne 0 ] || ! grep -q "clean shutdown" "$work/$mode.err"; then
    echo "FAIL $mode: the server exited $status on SIG$sig"; cat "$work/$mode.err"; exit 1
  fi
  echo "ok   $mode (stopped cleanly by SIG$sig)"
}

run tls TERM --dir "$work/fed" -- "$work/fed/ca.crt" "$work/fed/operator.crt" "$work/fed/operator.key"
run plaintext INT --insecure --
