#!/usr/bin/env bash
# Performance run, as README's Performance section reports it: builds serve
# and nats-server (the version in go.mod), starts a private redis-server and
# nats-server on free ports (never the machine's 6379/4222), optionally fills
# Redis with N remembered notifications, starts serve against them, runs
# loadgen, and prints serve's peak RSS and Redis memory. Everything it
# starts is stopped on exit.
#
#   scripts/perf.sh [--prefill N] [--profile SECONDS] [--redis-down stop|pause] [loadgen flags...]
#   e.g. scripts/perf.sh --duration 20s --connections 32
#
# --redis-down stop kills Redis once serve is ready (connections refused),
# --redis-down pause stops it with SIGSTOP (a hanging Redis): the run then
# measures the receiver publishing through the JetStream window alone.
#
# Environment: SERVE_ENV="GOGC=... GOMEMLIMIT=..." adds to serve's environment;
# KEEP=1 keeps the work directory (logs, profiles).
set -euo pipefail
cd "$(dirname "$0")/.."

prefill=0
profile=0
redis_down=""
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--prefill) prefill="$2"; shift 2 ;;
	--profile) profile="$2"; shift 2 ;;
	--redis-down) redis_down="$2"; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done

work=$(mktemp -d /tmp/pcn-perf.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; kill -CONT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "perf.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

go build -o "$work/paycomet-notify" ./cmd/paycomet-notify
go build -o "$work/nats-server" github.com/nats-io/nats-server/v2

rport=$(freeport); nport=$(freeport); lport=$(freeport); aport=$(freeport)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
"$work/nats-server" -a 127.0.0.1 -p "$nport" -js -sd "$work/nats" -l "$work/nats.log" &
pids+=($!)
rcli() { redis-cli -p "$rport" "$@"; }
for _ in $(seq 100); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done

if [ "$prefill" -gt 0 ]; then
	echo "perf.sh: remembering $prefill notifications in Redis (pcn:<32 hex>, 168h TTL)" >&2
	awk -v n="$prefill" 'BEGIN { for (i = 0; i < n; i++) { k = sprintf("pcn:%08x%08x%016x", i * 2654435761 % 4294967296, i, i); printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n$2\r\nEX\r\n$6\r\n604800\r\n", length(k), k } }' |
		rcli --pipe >/dev/null
	echo "perf.sh: dbsize $(rcli dbsize)" >&2
	rcli config resetstat >/dev/null
fi

export PAYCOMET_MERCHANT_CODE=PERF0001
export PAYCOMET_TERMINALS="1001:perf-password-one,1002:perf-password-two,1003:perf-password-three"
export URL_TOKEN=perf-url-token-0123456789abcdef
export NATS_URL="nats://127.0.0.1:$nport"
export REDIS_URL="redis://127.0.0.1:$rport/0"
export LISTEN_ADDR="127.0.0.1:$lport" ADMIN_ADDR="127.0.0.1:$aport" LOG_LEVEL=warn ADMIN_PPROF=true
env ${SERVE_ENV:-} "$work/paycomet-notify" serve 2>"$work/serve.log" &
spid=$!
pids+=($spid)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

case "$redis_down" in
"") ;;
stop) kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; echo "perf.sh: redis stopped (connections refused)" >&2 ;;
pause) kill -STOP "${pids[0]}"; echo "perf.sh: redis paused (SIGSTOP: accepts, never answers)" >&2 ;;
*) echo "perf.sh: --redis-down takes stop or pause" >&2; exit 2 ;;
esac

# Peak resident memory of serve, sampled every 100ms.
( peak=0; while kill -0 "$spid" 2>/dev/null; do
	r=$(awk '/VmRSS/ {print $2}' "/proc/$spid/status" 2>/dev/null || echo 0)
	[ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$work/rss.peak"
	sleep 0.1
done ) &
pids+=($!)

if [ "$profile" -gt 0 ]; then
	( sleep 3; curl -s "http://127.0.0.1:$aport/debug/pprof/profile?seconds=$profile" -o "$work/cpu.pprof"
	  curl -s "http://127.0.0.1:$aport/debug/pprof/heap" -o "$work/heap.pprof"
	  curl -s "http://127.0.0.1:$aport/debug/pprof/allocs" -o "$work/allocs.pprof" ) &
	pids+=($!)
	KEEP=1
fi

# CPU seconds (user+system) of a process, from /proc.
cpusec() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
rpid=${pids[0]}; npid=${pids[1]}
s0=$(cpusec "$spid"); r0=$(cpusec "$rpid"); n0=$(cpusec "$npid")
read -r _ u0 ni0 sy0 id0 io0 ir0 si0 st0 _ </proc/stat
set +e
/usr/bin/time -f "%U %S" -o "$work/loadgen.time" "$work/paycomet-notify" loadgen "${args[@]}"
rc=$?
set -e
echo "CPU seconds      serve $(awk -v a="$s0" -v b="$(cpusec "$spid")" 'BEGIN{print b-a}')" \
	" redis $(awk -v a="$r0" -v b="$(cpusec "$rpid")" 'BEGIN{print b-a}')" \
	" nats $(awk -v a="$n0" -v b="$(cpusec "$npid")" 'BEGIN{print b-a}')" \
	" loadgen $(awk '{print $1+$2}' "$work/loadgen.time")"
# The whole machine during the run (other tenants' work and VM steal show here).
read -r _ u1 ni1 sy1 id1 io1 ir1 si1 st1 _ </proc/stat
tot=$(( (u1+ni1+sy1+id1+io1+ir1+si1+st1) - (u0+ni0+sy0+id0+io0+ir0+si0+st0) ))
echo "machine          $(nproc) CPUs, busy $(( 100 * (tot - (id1-id0) - (io1-io0)) / tot ))%, steal $(( 100 * (st1-st0) / tot ))%"
echo "serve peak RSS   $(( $(cat "$work/rss.peak" 2>/dev/null || echo 0) / 1024 )) MB"
echo "serve RSS now    $(( $(awk '/VmRSS/ {print $2}' /proc/$spid/status) / 1024 )) MB"
if [ -z "$redis_down" ]; then
echo "redis            $(rcli info memory | grep -E '^used_memory_human' | tr -d '\r'), $(rcli dbsize) keys"
# Time Redis spent per SET (claims and seen marks), inside Redis.
echo "redis SET        $(rcli info commandstats | grep -E '^cmdstat_set:' | tr -d '\r' | sed 's/.*calls=\([0-9]*\).*usec_per_call=\([0-9.]*\).*/\1 calls, \2 us per call/')"
fi
curl -s "http://127.0.0.1:$aport/metrics" | grep -E '^paycomet_notify_(http_responses_total|published_without_dedupe_store_total|dedupe_store_errors_total|dedupe_store_up|duplicates_total)' || true
exit $rc
