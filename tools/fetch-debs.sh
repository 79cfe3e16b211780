#!/bin/sh
# Puts Debian packages, unpacked, into .cache/NAME/ of the repository, so that tests run real metric
# servers (Graphite, InfluxDB, VictoriaMetrics) without installing anything system-wide.
#
#   sh tools/fetch-debs.sh NAME CHECK PACKAGE...
#
# CHECK is a path under .cache/NAME that must exist afterwards (e.g. usr/bin/influxd). Idempotent:
# does nothing when CHECK is already there. Dependencies are not resolved: list every package needed.
set -eu

if [ "$#" -lt 3 ]; then
    echo "usage: $0 NAME CHECK PACKAGE..." >&2
    exit 2
fi
name=$1 check=$2
shift 2

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cache="$root/.cache/$name"

if [ -e "$cache/$check" ]; then
    echo "$name: already in $cache"
    exit 0
fi

for tool in apt-get dpkg; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "fetch-debs: '$tool' not found; $name needs a Debian-based system (the tests that use it will skip)." >&2
        exit 1
    fi
done

work=$(mktemp -d)
staging="$root/.cache/$name.partial.$$"
# Unpack into a staging directory and move it into place, so an interrupted run leaves no half cache.
trap 'rm -rf "$work" "$staging"' EXIT
trap 'exit 130' INT TERM

download() {
    (cd "$work" && apt-get download "$@") >"$work/apt.log" 2>&1
}

if ! download "$@"; then
    echo "fetch-debs: 'apt-get download $*' failed; running 'apt-get update' and trying again" >&2
    if ! apt-get update >"$work/update.log" 2>&1; then
        echo "fetch-debs: 'apt-get update' failed (are you root? is the network up?):" >&2
        tail -n 5 "$work/update.log" >&2
    fi
    if ! download "$@"; then
        echo "fetch-debs: cannot download the Debian packages for $name ($*):" >&2
        tail -n 5 "$work/apt.log" >&2
        echo "fetch-debs: the tests that need $name will skip, saying so" >&2
        exit 1
    fi
fi

mkdir -p "$root/.cache"
rm -rf "$staging"
for deb in "$work"/*.deb; do
    dpkg -x "$deb" "$staging"
done
if [ ! -e "$staging/$check" ]; then
    echo "fetch-debs: the packages for $name ($*) hold no $check" >&2
    exit 1
fi
rm -rf "$cache"
mv "$staging" "$cache"
echo "$name: $(cd "$work" && ls *.deb | tr '\n' ' ')unpacked into $cache"
