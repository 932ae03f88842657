#!/usr/bin/env bash
# run-fuzz.sh BUILD_FUZZ_DIR SECONDS [TARGET...] - run the libFuzzer targets
# built in BUILD_FUZZ_DIR (cmake -DSEALPOST_FUZZ=ON, target `fuzzers`) for
# SECONDS each, FUZZ_JOBS (default 2) at a time.
#
# Each target fuzzes a scratch copy of tests/fuzz/corpus/<name>/ (fuzz_X
# uses corpus/X): nothing is written into the source tree.  A crash, leak,
# timeout or out-of-memory makes the run fail (exit 1); the target's log
# tail and the path of the reproducing input are printed, and its scratch
# folder is kept (FUZZ_OUT, default a new /tmp/sealpost-fuzz.XXXXXX).
# Reproduce with: BUILD_FUZZ_DIR/tests/fuzz_X CRASH_FILE
set -u
if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_FUZZ_DIR SECONDS [TARGET...]" >&2
	exit 64
fi
build=$(cd "$1" && pwd) || exit 64
secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
jobs=${FUZZ_JOBS:-2}
out=${FUZZ_OUT:-$(mktemp -d /tmp/sealpost-fuzz.XXXXXX)}
mkdir -p "$out"

# max_len - longest input for a target: above every limit its parser has,
# so the "too long" paths are reached, and no more (longer inputs are slow)
max_len() {
	case $1 in
	fuzz_spool_parse) echo 16384 ;;	# Q_MAX_LINE 2048, several lines
	fuzz_smtp_reply) echo 8192 ;;	# SMTP_LINE_MAX 1001 (+ the DATA encoder)
	fuzz_dns_answer) echo 4096 ;;	# EDNS payload size; the walker has no other bound
	fuzz_tls_policy) echo 20000 ;;	# POLICY_LINE_MAX 8192
	fuzz_config) echo 12000 ;;	# 4096-byte paths, 64 routes
	*) echo 8192 ;;
	esac
}

# run_one - fuzz one target; writes its exit status into $out/NAME.rc
run_one() {
	local name=$1 bin=$build/tests/$1 dir=$out/$1
	local seeds=$here/corpus/${1#fuzz_}
	mkdir -p "$dir/corpus"
	[ -d "$seeds" ] && cp "$seeds"/* "$dir/corpus/" 2>/dev/null
	# detect_leaks: a leak fails the run like a crash; halt_on_error keeps
	# UBSan reports fatal even if a library was built with recovery.
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1:abort_on_error=0" \
	UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:print_stacktrace=1:halt_on_error=1" \
	"$bin" -max_total_time="$secs" -max_len="$(max_len "$name")" \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$dir/" "$dir/corpus" >"$dir/log" 2>&1
	echo $? >"$dir/rc"
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in "$build"/tests/fuzz_*; do
		[ -x "$f" ] && targets+=("$(basename "$f")")
	done
fi
if [ ${#targets[@]} -eq 0 ]; then
	echo "run-fuzz: no fuzz_* binaries in $build/tests (build the 'fuzzers' target)" >&2
	exit 1
fi
for t in "${targets[@]}"; do
	if [ ! -x "$build/tests/$t" ]; then
		echo "run-fuzz: $build/tests/$t: not built" >&2
		exit 1
	fi
done

echo "run-fuzz: ${#targets[@]} targets, ${secs}s each, $jobs at a time, scratch $out"
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$t" &
	running=$((running + 1))
done
wait

fail=0
for t in "${targets[@]}"; do
	dir=$out/$t
	rc=$(cat "$dir/rc" 2>/dev/null || echo 99)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
	cov=$(grep -a -o 'cov: [0-9]*' "$dir/log" | tail -n 1)
	corp=$(ls "$dir/corpus" | wc -l)
	if [ "$rc" -eq 0 ]; then
		echo "run-fuzz: PASS $t: ${execs:-?} execs in ${secs}s, ${cov:-cov: ?}, corpus $corp"
		rm -rf "$dir"
		continue
	fi
	fail=1
	echo "run-fuzz: FAIL $t (exit $rc): log $dir/log"
	grep -a -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$dir/log" | head -n 5
	for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*; do
		[ -e "$a" ] && echo "run-fuzz: reproduce: $build/tests/$t $a"
	done
	tail -n 40 "$dir/log"
done
[ "$fail" -eq 0 ] && rmdir "$out" 2>/dev/null
exit "$fail"
