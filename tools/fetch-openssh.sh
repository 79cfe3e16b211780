#!/bin/sh
# Puts Debian's OpenSSH server (sshd, plus libwrap0, the one library it links that the client
# packages do not bring) into .cache/openssh/ of the repository, so that the Git credential tests
# talk to a real sshd without installing or configuring anything system-wide.
# Idempotent: does nothing when sshd is already there.
set -eu

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cache="$root/.cache/openssh"
sshd="$cache/usr/sbin/sshd"

libs_of() {
    # The library folders unpacked from the packages, for the dynamic loader.
    find "$1/usr/lib" "$1/lib" \( -name '*.so' -o -name '*.so.*' \) -exec dirname {} \; 2>/dev/null | sort -u | paste -sd: -
}

if [ -x "$sshd" ]; then
    echo "openssh: already in $cache/usr/sbin"
    exit 0
fi

for tool in apt-get dpkg ldd; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "fetch-openssh: '$tool' not found; this script needs a Debian-based system." >&2
        echo "fetch-openssh: install an OpenSSH server yourself and set ROLLOUT_SSHD=/path/to/sshd" >&2
        exit 1
    fi
done

work=$(mktemp -d)
staging="$root/.cache/openssh.partial.$$"
# Unpack into a staging directory and move it into place, so an interrupted run leaves no half cache.
trap 'rm -rf "$work" "$staging"' EXIT
trap 'exit 130' INT TERM

download() {
    (cd "$work" && apt-get download "$@") >"$work/apt.log" 2>&1
}

fetch() {
    if ! download "$@"; then
        echo "fetch-openssh: 'apt-get download $*' failed; running 'apt-get update' and trying again" >&2
        if ! apt-get update >"$work/update.log" 2>&1; then
            echo "fetch-openssh: 'apt-get update' failed (are you root? is the network up?):" >&2
            tail -n 5 "$work/update.log" >&2
        fi
        if ! download "$@"; then
            echo "fetch-openssh: cannot download the Debian packages '$*':" >&2
            tail -n 5 "$work/apt.log" >&2
            echo "fetch-openssh: install an OpenSSH server yourself and set ROLLOUT_SSHD=/path/to/sshd" >&2
            exit 1
        fi
    fi
}

unresolved() {
    LD_LIBRARY_PATH=$(libs_of "$staging") ldd "$staging/usr/sbin/sshd" 2>/dev/null | grep 'not found' || true
}

fetch openssh-server libwrap0
mkdir -p "$root/.cache"
rm -rf "$staging"
for deb in "$work"/*.deb; do
    dpkg -x "$deb" "$staging"
done
if [ ! -x "$staging/usr/sbin/sshd" ]; then
    echo "fetch-openssh: the openssh-server package holds no usr/sbin/sshd" >&2
    exit 1
fi
# libwrap0 needs libnsl2, which most Debian machines have; fetch it only when it is missing.
if unresolved | grep -q 'libnsl'; then
    rm -f "$work"/*.deb
    fetch libnsl2
    for deb in "$work"/*.deb; do
        dpkg -x "$deb" "$staging"
    done
fi
missing=$(unresolved)
if [ -n "$missing" ]; then
    echo "fetch-openssh: sshd needs libraries this machine does not have:" >&2
    echo "$missing" >&2
    exit 1
fi
rm -rf "$cache"
mv "$staging" "$cache"
echo "openssh: sshd unpacked into $cache"
LD_LIBRARY_PATH=$(libs_of "$cache") "$sshd" -V 2>&1 | head -n 1 || true
