#!/usr/bin/env bash
# The whole test suite, as README.md and .ci/run call it. It installs what the
# integration tests need and is missing (Debian's redis-server and chromium
# packages); the
# tests themselves start redis-server on free ports and an in-process NATS
# server, so the machine's own Redis and NATS are never used or disturbed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
	echo "test.sh: redis-server is missing; installing Debian's redis-server package" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
command -v redis-server >/dev/null 2>&1 || { echo "test.sh: redis-server still missing" >&2; exit 1; }

# The operator page's tests drive a real browser (headless Chromium through
# chromedp); under CI=true a missing browser fails them instead of skipping.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
	echo "test.sh: chromium is missing; installing Debian's chromium package (for the browser tests of ui/)" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { echo "test.sh: chromium still missing" >&2; exit 1; }

go version

# The whole output goes to the terminal as it comes; on failure the failing
# tests and packages are repeated at the end, so a long busy-machine run
# still shows what failed in its last lines.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
go test -race -count=1 -timeout 20m "$@" ./... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
	echo "test.sh: go test failed (exit $rc):" >&2
	grep -E '^\s*--- FAIL|^FAIL|^panic:|timed out' "$log" >&2 || true
fi
exit "$rc"
