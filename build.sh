#!/usr/bin/env bash
# build.sh - install what is missing, configure and build sealpost into build/.
#
#   ./build.sh          build only
#   ./build.sh demo     build, then run the bundled end-to-end delivery demo
#   ./build.sh test     build, then run the whole test suite (ctest); with
#                       CI=true or SEALPOST_FULL_TEST=1 also: the suite under
#                       ASan+UBSan (build-asan/), every fuzzer for
#                       SEALPOST_FUZZ_SECONDS (60) (build-fuzz/, clang), the
#                       threaded unit tests under TSan (build-tsan/, clang),
#                       and valgrind memcheck on the sealpost commands of
#                       one integration run (submit_queue_flush.sh)
#
# Environment: CI=true adds -Werror; SEALPOST_SANITIZE=1 builds with
# ASan+UBSan into build-asan/; SEALPOST_BUILD_TYPE=Debug|Release;
# SEALPOST_FAST_WOLFSSL=0 skips the optimised wolfSSL build, which is
# cached in SEALPOST_CACHE (default /var/cache/sealpost, else
# ~/.cache/sealpost); its log is wolfssl-build.log there.
set -euo pipefail
cd "$(dirname "$0")"
src=$(pwd)
mode=${1:-build}

# Debian packages: build and library dependencies, then what the tests run.
build_pkgs="build-essential cmake pkg-config libwolfssl-dev liburing-dev libc-ares-dev libcriterion-dev"
test_pkgs="openssl unbound python3-aiosmtpd faketime clang libclang-rt-14-dev valgrind cppcheck iproute2"
wolf_pkgs="dpkg-dev autoconf automake libtool"

install_missing() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "build.sh: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		sudo_cmd=sudo
	else
		sudo_cmd=
	fi
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

pkgs="$build_pkgs"
[ "$mode" = test ] || [ "$mode" = demo ] && pkgs="$pkgs $test_pkgs"
[ "${SEALPOST_FAST_WOLFSSL:-1}" = 1 ] && pkgs="$pkgs $wolf_pkgs"
# shellcheck disable=SC2086
install_missing $pkgs

# The optimised wolfSSL (AES-NI, x86-64 assembly), built once and cached
# outside the tree; the system library is the fallback.
wolf_prefix=""
if [ "${SEALPOST_FAST_WOLFSSL:-1}" = 1 ] && [ -x "$src/bench/build-wolfssl.sh" ]; then
	if wolf_prefix=$("$src/bench/build-wolfssl.sh"); then
		echo "build.sh: using optimised wolfSSL in $wolf_prefix"
	else
		echo "build.sh: NOTE: optimised wolfSSL could not be built; using the system libwolfssl (no AES-NI, slower bulk crypto)"
		wolf_prefix=""
	fi
fi

# step NAME / step_done / fail WHAT - headers and timing for `test`
t_start=$(date +%s)
step() {
	t_step=$(date +%s)
	step_name=$1
	echo
	echo "=================== build.sh test: $1 ==================="
}
step_done() {
	echo "=================== done: $step_name ($(( $(date +%s) - t_step ))s) ==================="
}
fail() {
	echo "build.sh: FAILED: $1" >&2
	exit 1
}

# full_checks - the CI extras of `test`, each its own build folder
full_checks() {
	local werror=() vgdir
	[ "${CI:-}" = true ] && werror=(-DSEALPOST_WERROR=ON)

	if [ "$build_dir" != build-asan ]; then
		step "ASan+UBSan build and whole suite (build-asan)"
		cmake -S . -B build-asan "${cmake_args[@]}" -DSEALPOST_SANITIZE=ON >/dev/null &&
			cmake --build build-asan -j "$(nproc)" || fail "ASan+UBSan build"
		(cd build-asan && ctest --output-on-failure -j 2 --timeout 900) ||
			fail "test suite under ASan+UBSan (build-asan)"
		step_done
	fi

	step "cppcheck (warning and portability checks, the whole tree)"
	# --inline-suppr: the one suppression (dns/packet.c) says why beside it.
	cppcheck --quiet --enable=warning,portability --inline-suppr --error-exitcode=1 \
		--std=c11 -D__linux__ -D_GNU_SOURCE -I. common dns engine queue tls bench ||
		fail "cppcheck"
	step_done

	step "libFuzzer targets, ${SEALPOST_FUZZ_SECONDS:-60}s each (build-fuzz, clang)"
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DSEALPOST_SANITIZE=ON -DSEALPOST_FUZZ=ON "${werror[@]}" >/dev/null &&
		cmake --build build-fuzz -j "$(nproc)" --target fuzzers || fail "fuzzer build"
	tests/fuzz/run-fuzz.sh build-fuzz "${SEALPOST_FUZZ_SECONDS:-60}" || fail "fuzzing"
	step_done

	step "threaded unit tests under TSan (build-tsan, clang)"
	cmake -S . -B build-tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DSEALPOST_TSAN=ON "${werror[@]}" >/dev/null &&
		cmake --build build-tsan -j "$(nproc)" --target tsan_test_session tsan_test_tls tsan_test_log ||
		fail "TSan build"
	(cd build-tsan && ctest --output-on-failure -L tsan -j 2) || fail "tests under TSan"
	step_done

	step "valgrind memcheck on the sealpost commands (tests/integration/submit_queue_flush.sh, $build_dir)"
	# The engine itself cannot run under valgrind 3.19: a thread blocked in
	# io_uring_enter keeps valgrind's global lock and every other thread
	# stalls (KDE bug 463859, liburing#657); ASan/LSan cover it in
	# build-asan.  The commands (submit, queue, flush: spool writer and
	# parser) run here through a stand-in build folder whose sealpost runs
	# the real binary under memcheck.  Errors or definite/possible leaks make
	# it exit 99, which the test's exit-status checks see; the logs are
	# checked too.
	vgdir=$(mktemp -d /tmp/sealpost-valgrind.XXXXXX)
	mkdir -p "$vgdir/build" "$vgdir/logs"
	printf '#!/bin/sh\nexec valgrind --error-exitcode=99 --leak-check=full --log-file=%s/logs/vg.%%p %s "$@"\n' \
		"$vgdir" "$src/$build_dir/sealpost" >"$vgdir/build/sealpost"
	chmod +x "$vgdir/build/sealpost"
	SEALPOST_BUILD="$vgdir/build" SEALPOST_SRC="$src" bash tests/integration/submit_queue_flush.sh || {
		cat "$vgdir"/logs/vg.* 2>/dev/null
		fail "submit_queue_flush.sh under valgrind (logs in $vgdir/logs)"
	}
	[ -n "$(ls "$vgdir/logs")" ] || fail "valgrind: no sealpost command ran"
	if grep -l -E 'ERROR SUMMARY: [1-9]|(definitely|possibly) lost: [1-9]' "$vgdir"/logs/vg.*; then
		cat "$vgdir"/logs/vg.*
		fail "valgrind found errors (logs in $vgdir/logs)"
	fi
	echo "valgrind: $(ls "$vgdir/logs" | wc -l) sealpost runs, no errors, no leaks"
	rm -rf "$vgdir"
	step_done
}

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE="${SEALPOST_BUILD_TYPE:-Release}" -DSEALPOST_WOLFSSL_PREFIX="$wolf_prefix")
if [ "${SEALPOST_SANITIZE:-0}" = 1 ]; then
	build_dir=build-asan
	cmake_args+=(-DSEALPOST_SANITIZE=ON)
fi
[ "${CI:-}" = true ] && cmake_args+=(-DSEALPOST_WERROR=ON)

cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"

case "$mode" in
build) ;;
test)
	step "test suite ($build_dir)"
	(cd "$build_dir" && ctest --output-on-failure -j 2 --timeout 900) ||
		fail "test suite in $build_dir"
	step_done
	if [ "${CI:-}" = true ] || [ "${SEALPOST_FULL_TEST:-0}" = 1 ]; then
		full_checks
	fi
	echo "build.sh: all tests passed ($(( $(date +%s) - t_start ))s)"
	;;
demo)
	exec "$src/bench/demo.sh" "$src/$build_dir"
	;;
*)
	echo "usage: $0 [build|demo|test]" >&2
	exit 64
	;;
esac
