#!/bin/sh
# Puts Debian's Prometheus (prometheus and promtool) into .cache/prometheus/ of the repository, so
# that tests and the sandbox run a real Prometheus without installing anything system-wide.
# Idempotent: does nothing when the binaries are already there.
set -eu

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cache="$root/.cache/prometheus"
bin="$cache/usr/bin"

if [ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ]; then
    echo "prometheus: already in $bin"
    exit 0
fi

for tool in apt-get dpkg; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "fetch-prometheus: '$tool' not found; this script needs a Debian-based system." >&2
        echo "fetch-prometheus: install Prometheus yourself and set ROLLOUT_PROMETHEUS=/path/to/prometheus" >&2
        exit 1
    fi
done

work=$(mktemp -d)
staging="$root/.cache/prometheus.partial.$$"
# Unpack into a staging directory and move it into place, so an interrupted run leaves no half cache.
trap 'rm -rf "$work" "$staging"' EXIT
trap 'exit 130' INT TERM

download() {
    (cd "$work" && apt-get download prometheus) >"$work/apt.log" 2>&1
}

if ! download; then
    echo "fetch-prometheus: 'apt-get download prometheus' failed; running 'apt-get update' and trying again" >&2
    if ! apt-get update >"$work/update.log" 2>&1; then
        echo "fetch-prometheus: 'apt-get update' failed (are you root? is the network up?):" >&2
        tail -n 5 "$work/update.log" >&2
    fi
    if ! download; then
        echo "fetch-prometheus: cannot download the Debian package 'prometheus':" >&2
        tail -n 5 "$work/apt.log" >&2
        echo "fetch-prometheus: install Prometheus yourself and set ROLLOUT_PROMETHEUS=/path/to/prometheus" >&2
        exit 1
    fi
fi

deb=$(ls "$work"/prometheus_*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
    echo "fetch-prometheus: apt-get reported success but left no prometheus_*.deb" >&2
    exit 1
fi

mkdir -p "$root/.cache"
rm -rf "$staging"
dpkg -x "$deb" "$staging"
if [ ! -x "$staging/usr/bin/prometheus" ] || [ ! -x "$staging/usr/bin/promtool" ]; then
    echo "fetch-prometheus: $(basename "$deb") holds no usr/bin/prometheus and usr/bin/promtool" >&2
    exit 1
fi
rm -rf "$cache"
mv "$staging" "$cache"
echo "prometheus: $(basename "$deb") unpacked into $cache"
"$bin/prometheus" --version 2>&1 | head -n 1
