#!/usr/bin/env bash
# Every fuzz target of the module, each for FUZZTIME (default 20s), as
# `make fuzz` and .ci/run call it. Targets are found by name (func FuzzXxx in
# a _test.go file), so a new one is fuzzed without editing this script. Seed
# corpora are the targets' f.Add calls (most read testdata/) and any
# testdata/fuzz/<Target>/ files, which `go test` also runs as regression
# cases on every `make test`.
#
# A failing input is written to <package>/testdata/fuzz/<Target>/ by go test:
# fix the bug and commit that file, so the case stays in the suite.
#
# go1.26's fuzz coordinator sometimes fails a target with a bare "context
# deadline exceeded" at the end of -fuzztime while a worker is still busy
# (golang/go#75804, fixed in go1.27), with no failing input. Such a run is
# reported and tolerated; any run that wrote a failing input, or failed any
# other way, fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }

status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*(' "$dir"/*_test.go 2>/dev/null | sed 's/^func //; s/($//' | sort -u || true)
	for t in $targets; do
		corpus="$dir/testdata/fuzz/$t"
		before=$(count "$corpus")
		echo "fuzz: $pkg $t ($fuzztime)"
		set +e
		go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1
		rc=$?
		set -e
		after=$(count "$corpus")
		if [ "$rc" -eq 0 ]; then
			grep -E '^fuzz: elapsed' "$log" | tail -1 || true
		elif [ "$after" -eq "$before" ] && grep -q 'context deadline exceeded' "$log" &&
			! grep -qE 'Failing input written|panic:' "$log"; then
			grep -E '^fuzz: elapsed' "$log" | tail -1 || true
			echo "fuzz: $t: go's fuzz coordinator ended with 'context deadline exceeded' and no failing input (golang/go#75804); not a crash"
		else
			cat "$log"
			echo "fuzz: $t FAILED; the failing input is in ${corpus#"$PWD"/}: fix the bug and commit it as a regression case"
			status=1
		fi
	done
done
exit $status
