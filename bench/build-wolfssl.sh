#!/usr/bin/env bash
# build-wolfssl.sh - build an optimised wolfSSL once, cache it, print its prefix.
#
#   bench/build-wolfssl.sh        print the install prefix on stdout, exit 0
#
# Debian's libwolfssl is configured without AES-NI (about 166 MB/s of
# AES-128-GCM against several GB/s with it).  This script fetches the newest
# wolfssl source package Debian serves (security updates included) through a
# private deb-src list -- the machine's apt configuration is not touched --
# and builds it with Debian's own configure flags plus --enable-aesni
# --enable-intelasm, as a static library under
#
#   ${SEALPOST_CACHE:-/var/cache/sealpost}/wolfssl-<debian version>-<flags hash>/
#
# (falling back to ~/.cache/sealpost when that is not writable).  A finished
# build carries a stamp file; with one present, and no older than the
# installed libwolfssl-dev, the script only prints the prefix.
#
# Output: the prefix is the only thing written to stdout; progress goes to
# stderr and the build log to <cache>/wolfssl-build.log.  Exit 0 on success,
# non-zero on any failure (build.sh then uses the system library).
#
# Environment: SEALPOST_CACHE (cache folder), SEALPOST_WOLFSSL_REFRESH=1
# (ask Debian for a newer source even when a cached build is usable).
set -euo pipefail

# Recipe revision: bump it when the steps below change what gets installed.
recipe=1

# Debian's debian/rules flags, then the speed-ups, then a static-only
# position-independent library (it ends up inside PIE executables).
deb_flags="--enable-distro --enable-pkcs11 --disable-examples --disable-silent-rules"
our_flags="--enable-aesni --enable-intelasm --disable-crypttests --enable-static --disable-shared --with-pic"

# Keep stdout for the prefix alone.
exec 3>&1 1>&2

note() { echo "build-wolfssl: $*" >&2; }
die() { note "$*"; exit 1; }

case "$(uname -m)" in
x86_64) ;;
*) die "AES-NI/intel assembly needs x86-64, this is $(uname -m)" ;;
esac

# pick_cache - the first writable cache folder
pick_cache() {
	local c
	for c in "${SEALPOST_CACHE:-/var/cache/sealpost}" "${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/sealpost"; do
		if mkdir -p "$c" 2>/dev/null && [ -w "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}
cache=$(pick_cache) || die "no writable cache folder (set SEALPOST_CACHE)"

hash=$(printf '%s|%s|%s|%s' "$recipe" "$deb_flags" "$our_flags" "$(uname -m)" | sha256sum | cut -c1-12)
installed=$(dpkg-query -W -f='${Version}' libwolfssl-dev 2>/dev/null || true)
[ -n "$installed" ] || installed=0

# find_cached - print the newest finished build that is not older than the
# installed libwolfssl-dev (a build lagging a security update is stale), or
# that was built while this libwolfssl-dev was installed (Debian served
# nothing newer then; asking again on every build would only cost time)
find_cached() {
	local best="" bestv="" d v seen
	for d in "$cache"/wolfssl-*-"$hash"; do
		[ -f "$d/.sealpost-stamp" ] || continue
		v="" seen=""
		{ read -r v; read -r seen; } <"$d/.sealpost-stamp" || true
		[ -n "$v" ] || continue
		dpkg --compare-versions "$v" ge "$installed" || [ "${seen:-}" = "$installed" ] || continue
		if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$bestv"; then
			best=$d
			bestv=$v
		fi
	done
	[ -n "$best" ] && echo "$best"
}

if [ "${SEALPOST_WOLFSSL_REFRESH:-0}" != 1 ] && prefix=$(find_cached); then
	echo "$prefix" >&3
	exit 0
fi

for tool in apt-get dpkg-source autoreconf libtoolize make gcc flock sha256sum; do
	command -v "$tool" >/dev/null || die "needs $tool (apt-get install dpkg-dev autoconf automake libtool build-essential)"
done

# One builder at a time; a waiting one finds the other's result.
exec 9>"$cache/wolfssl.lock"
flock 9
if [ "${SEALPOST_WOLFSSL_REFRESH:-0}" != 1 ] && prefix=$(find_cached); then
	echo "$prefix" >&3
	exit 0
fi

# Holding the lock, any work folder left here is from a killed build.
rm -rf "$cache"/wolfssl-work.*
work=$(mktemp -d "$cache/wolfssl-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
log="$cache/wolfssl-build.log"
: >"$log"
started=$(date +%s)

# A private deb-src list derived from the machine's deb entries.  One-line
# lists are rewritten deb -> deb-src; deb822 stanzas get Types: deb-src and
# keep every other field (Signed-By, Enabled, ...).
mkdir -p "$work/apt/sources.list.d" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f"
done >"$work/apt/sources.list.d/debsrc.list"
n=0
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	sed 's/^Types:.*/Types: deb-src/' "$f" >"$work/apt/sources.list.d/debsrc$n.sources"
done
apt_opts=(-o Dir::Etc::SourceList=/dev/null
	-o Dir::Etc::SourceParts="$work/apt/sources.list.d"
	-o Dir::State::Lists="$work/apt/lists"
	-o Dir::Cache="$work/apt/cache"
	-o Acquire::Retries=2 -o Acquire::http::Timeout=30)
# As root apt would hand the download to the _apt user, who cannot enter
# our private folders; as a user it never drops privileges.
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)

note "fetching the wolfssl source package from Debian (log: $log)"
# A third-party entry without Sources indexes makes update fail while the
# Debian ones worked: judge by whether the source download succeeds.
timeout 300 apt-get "${apt_opts[@]}" update >>"$log" 2>&1 || note "apt-get update reported errors (see $log), trying anyway"
(cd "$work/src" && timeout 300 apt-get "${apt_opts[@]}" source --download-only wolfssl) >>"$log" 2>&1 ||
	die "could not download the wolfssl source package (see $log)"
dscs=("$work"/src/wolfssl_*.dsc)
[ -f "${dscs[0]}" ] || die "no wolfssl .dsc downloaded (see $log)"
dsc=${dscs[0]}
version=$(sed -n 's/^Version:[[:space:]]*//p' "$dsc" | head -n 1)
[ -n "$version" ] || die "no Version in $dsc"
# The version goes into a path: keep it to the characters Debian uses.
case "$version" in
*[!A-Za-z0-9.+~:-]*) die "unexpected package version '$version'" ;;
esac
prefix="$cache/wolfssl-${version//:/_}-$hash"
if [ -f "$prefix/.sealpost-stamp" ]; then
	# Refreshed, and Debian has nothing newer than what is cached.
	printf '%s\n%s\n' "$version" "$installed" >"$prefix/.sealpost-stamp"
	echo "$prefix" >&3
	exit 0
fi
note "building wolfssl $version into $prefix"

(cd "$work/src" && dpkg-source -x "$(basename "$dsc")" tree) >>"$log" 2>&1 ||
	die "dpkg-source -x failed (see $log)"
cd "$work/src/tree"
if [ ! -x configure ]; then
	./autogen.sh >>"$log" 2>&1 || die "autogen.sh failed (see $log)"
fi
# Debian's hardening flags (stack protector, fortify, relro), as its build.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
eval "$(dpkg-buildflags --export=sh 2>/dev/null)" || true
# shellcheck disable=SC2086
./configure --prefix="$prefix" $deb_flags $our_flags >>"$log" 2>&1 ||
	die "configure failed (see $log)"
grep -q '^#define WOLFSSL_AESNI' wolfssl/options.h || die "configure did not enable AES-NI (see $log)"
# --enable-distro forces shared libraries back on after libtool has read
# --disable-shared; this libtool tag makes the build static-only again
# (and halves the compile time).
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" LIBTOOLFLAGS=--tag=disable-shared >>"$log" 2>&1 || die "make failed (see $log)"

rm -rf "$prefix"
make install LIBTOOLFLAGS=--tag=disable-shared >>"$log" 2>&1 || die "make install failed (see $log)"
# Distro builds leave the generated options.h out of the install; without
# it the compiler would silently take /usr/include/wolfssl/options.h, whose
# defines (no AES-NI) do not match this library's structures.
install -m 0644 wolfssl/options.h "$prefix/include/wolfssl/options.h"
rm -f "$prefix"/lib/libwolfssl.so* "$prefix"/lib/libwolfssl.la
[ -f "$prefix/lib/libwolfssl.a" ] || die "no libwolfssl.a installed (see $log)"

# The installed .pc lacks what a static link needs: write our own.
libs_private=$(sed -n 's/^LIBM = //p; s/^LIBS = //p' Makefile | tr '\n' ' ' | tr -s ' ')
upstream=$(sed -n 's/^Version:[[:space:]]*//p' "$prefix/lib/pkgconfig/wolfssl.pc" | head -n 1)
cat >"$prefix/lib/pkgconfig/wolfssl.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: wolfssl
Description: wolfssl C library (Debian $version, static, AES-NI, built by sealpost)
Version: ${upstream:-${version%%-*}}
Libs: -L\${libdir} -lwolfssl
Libs.private: ${libs_private% }
Cflags: -I\${includedir}
EOF
cp -f "$log" "$prefix/build.log"
# Stamp: source version, then the libwolfssl-dev installed at build time.
printf '%s\n%s\n' "$version" "$installed" >"$prefix/.sealpost-stamp"
note "done in $(($(date +%s) - started)) s, $(du -sh "$prefix" | cut -f1) in $prefix"
echo "$prefix" >&3
