#!/usr/bin/env bash
# run-criterion.sh BINARY - run one criterion test binary and fail loudly on
# what criterion itself lets pass: a LeakSanitizer report (criterion prints
# PASS and exits 0), or a run that executed no test at all (an unknown flag
# prints help and exits 0).  Only flags this criterion (2.4) knows are used.
set -u
bin=$1
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1:log_path=$logdir/asan"
export LSAN_OPTIONS="${LSAN_OPTIONS:-}:log_path=$logdir/lsan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:print_stacktrace=1:log_path=$logdir/ubsan"
export TSAN_OPTIONS="${TSAN_OPTIONS:-}:log_path=$logdir/tsan"
out="$logdir/out"
"$bin" --jobs=2 --short-filename >"$out" 2>&1
rc=$?
cat "$out"
if [ $rc -ne 0 ]; then
  echo "run-criterion: $bin exited $rc"
  exit 1
fi
# Any non-empty report file fails the run.  (Not `ls a* b* c*`: that
# fails as soon as one of the patterns has no match, and hid every leak.)
reports=$(find "$logdir" -maxdepth 1 -type f -size +0 \
  \( -name 'asan*' -o -name 'lsan*' -o -name 'ubsan*' -o -name 'tsan*' \))
if [ -n "$reports" ]; then
  echo "run-criterion: sanitizer reports:"
  # shellcheck disable=SC2086
  cat $reports
  exit 1
fi
# criterion's closing line: "[====] Synthesis: Tested: N | Passing: N | Failing: 0 | Crashing: 0"
line=$(grep -a 'Synthesis: Tested:' "$out" | tail -n 1)
tested=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$line")
failing=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
if [ -z "$tested" ] || [ "$tested" -eq 0 ]; then
  echo "run-criterion: $bin ran no test"
  exit 1
fi
if [ "${failing:-1}" -ne 0 ]; then
  echo "run-criterion: $bin has failing tests"
  exit 1
fi
exit 0
