#!/usr/bin/env bash
# demo.sh BUILD_DIR [sealpost-bench run options] - the end-to-end demo that
# `./build.sh demo` runs: `sealpost-bench run` with 10,000 fax-like
# messages (60 KB PDF attachments) delivered by the engine over verified
# TLS into the bundled STARTTLS sink, then the report table.
#
#   bench/demo.sh build
#   bench/demo.sh build --rate 1000 -n 5000 --svg demo.svg
#
# Knobs (environment): DEMO_MESSAGES [10000], DEMO_SIZE [60000].  Any
# further arguments go to `sealpost-bench run` (see `sealpost-bench run --help`).
set -eu

build=$(cd "${1:?usage: demo.sh BUILD_DIR [run options]}" && pwd)
shift
src=$(cd "$(dirname "$0")/.." && pwd)

for f in "$build/sealpost" "$build/sealpost-bench"; do
	[ -x "$f" ] || { echo "demo: $f is not built (cmake --build $build)" >&2; exit 1; }
done

echo "demo: sealpost-bench run -n ${DEMO_MESSAGES:-10000} --size ${DEMO_SIZE:-60000} $*"
SEALPOST_SRC=$src exec "$build/sealpost-bench" run -n "${DEMO_MESSAGES:-10000}" \
	--size "${DEMO_SIZE:-60000}" "$@"
