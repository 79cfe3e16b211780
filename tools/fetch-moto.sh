#!/bin/sh
# Puts moto's server mode (a local imitation of AWS APIs, CloudWatch among them) into its own
# virtualenv in .cache/moto/, so that the CloudWatch provider is tested against a real server
# process. Its own environment, because boto3 (which moto needs) pins python-dateutil below the
# version the kubernetes client needs. Idempotent: does nothing when moto_server is already there.
set -eu

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cache="$root/.cache/moto"
python=${PYTHON:-python3}

# A virtualenv moved from where it was built has scripts that name a python no longer there: run it.
if [ -x "$cache/bin/moto_server" ] && "$cache/bin/moto_server" --help >/dev/null 2>&1; then
    echo "moto: already in $cache"
    exit 0
fi

log=$(mktemp)
# A virtualenv records its own path, so it is built in place; a run that stops half-way leaves no
# moto_server, and the next run starts over.
trap 'rm -f "$log"; [ -x "$cache/bin/moto_server" ] || rm -rf "$cache"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$root/.cache"
rm -rf "$cache"
if ! "$python" -m venv "$cache" >"$log" 2>&1; then
    echo "fetch-moto: '$python -m venv' failed; the CloudWatch tests will skip:" >&2
    tail -n 5 "$log" >&2
    exit 1
fi
# moto's CloudWatch backend, boto3 to put test data, and the werkzeug/flask app moto_server serves.
if ! "$cache/bin/python" -m pip install --quiet "moto[cloudwatch]>=5.0" "flask>=3" "flask-cors>=4" >"$log" 2>&1 \
        || [ ! -x "$cache/bin/moto_server" ]; then
    echo "fetch-moto: cannot install moto from the package index; the CloudWatch tests will skip:" >&2
    tail -n 5 "$log" >&2
    exit 1
fi
echo "moto: $("$cache/bin/python" -m pip show moto | sed -n 's/^Version: //p') in $cache"
