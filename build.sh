#!/usr/bin/env bash
# build.sh - install what is missing, configure and build sealpost into build/.
#
#   ./build.sh          build only
#   ./build.sh demo     build, then run the bundled end-to-end delivery demo
#   ./build.sh test     build, then run the whole test suite (ctest)
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
test_pkgs="openssl unbound python3-aiosmtpd faketime clang libclang-rt-14-dev valgrind"
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
	cd "$build_dir"
	ctest --output-on-failure -j 2 --timeout 900
	;;
demo)
	exec "$src/bench/demo.sh" "$src/$build_dir"
	;;
*)
	echo "usage: $0 [build|demo|test]" >&2
	exit 64
	;;
esac
