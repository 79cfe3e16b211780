# Every target bootstraps what it needs: a fresh Debian machine with Python 3.11+ is enough.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml sandbox/pyproject.toml | cksum | cut -d' ' -f1)

PROMETHEUS := .cache/prometheus/usr/bin/prometheus
OPENSSH    := .cache/openssh/usr/sbin/sshd
# Metric servers the provider tests query: Graphite (carbon + graphite-web and the Python packages
# they import), InfluxDB 1.x, VictoriaMetrics (with vmauth), and moto imitating CloudWatch.
GRAPHITE   := .cache/graphite/usr/bin/carbon-cache
INFLUXDB   := .cache/influxdb/usr/bin/influxd
VICTORIA   := .cache/victoria-metrics/usr/bin/victoria-metrics
MOTO       := .cache/moto/bin/moto_server
GRAPHITE_DEBS := graphite-carbon graphite-web python3-whisper python3-django python3-django-tagging \
	python3-pyparsing python3-simplejson python3-tz python3-urllib3 python3-cairocffi python3-cffi \
	python3-cffi-backend python3-xcffib python3-six python3-twisted python3-cachetools python3-asgiref \
	python3-sqlparse python3-zope.interface python3-automat python3-constantly python3-hyperlink \
	python3-incremental python3-attr python3-typing-extensions python3-idna
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv lint test unit demo chaos bench bench-quick tools metric-servers chromium kubectl zsh clean screenshots

# One pip call for both projects: `rollout[test]` needs `rollout-sandbox`, which pip then takes from sandbox/.
$(STAMP): pyproject.toml sandbox/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e ./sandbox
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check rollout analysis sandbox tests $(wildcard benchmarks)
	$(BIN)/mypy --strict rollout/api rollout/core analysis
	$(BIN)/mypy rollout sandbox
	$(BIN)/lint-imports

# Real programs the tests start: Prometheus, OpenSSH's sshd and the metric servers (Debian's packages,
# unpacked into .cache; moto in its own virtualenv there), Chromium (renders the HTML reports) and
# kubectl (`kubectl kustomize` for GitSources).
$(PROMETHEUS): tools/fetch-prometheus.sh
	sh tools/fetch-prometheus.sh

$(OPENSSH): tools/fetch-openssh.sh
	sh tools/fetch-openssh.sh

# A server that cannot be had is reported and its tests skip saying so; the other tools still come.
$(GRAPHITE): tools/fetch-debs.sh
	-sh tools/fetch-debs.sh graphite usr/bin/carbon-cache $(GRAPHITE_DEBS)

$(INFLUXDB): tools/fetch-debs.sh
	-sh tools/fetch-debs.sh influxdb usr/bin/influxd influxdb

$(VICTORIA): tools/fetch-debs.sh
	-sh tools/fetch-debs.sh victoria-metrics usr/bin/victoria-metrics victoria-metrics

$(MOTO): tools/fetch-moto.sh
	-PYTHON=$(PYTHON) sh tools/fetch-moto.sh

metric-servers: $(GRAPHITE) $(INFLUXDB) $(VICTORIA) $(MOTO)

kubectl:
	@command -v kubectl >/dev/null 2>&1 || \
	  { echo "installing kubectl (GitSources with a kustomization.yaml are built with kubectl kustomize)"; \
	    $(SUDO) apt-get install -y -qq kubectl >/dev/null || echo "kubectl could not be installed"; }

chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing Debian's chromium (renders the HTML report in tests)"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# zsh: the test that `rollout completion zsh` completes in a real zsh.
zsh:
	@command -v zsh >/dev/null 2>&1 || \
	  { echo "installing Debian's zsh (completion tests)"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends zsh >/dev/null; }

tools: $(PROMETHEUS) $(OPENSSH) metric-servers chromium kubectl zsh

# A file's tests run on one worker (they share its module fixtures). Files are handed out in collection
# order (chaos, component, conformance, e2e, then the many short unit files), not xdist's default of
# most tests first, which leaves the slow e2e files of one or two tests for the end, to one worker.
test: lint tools
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The whole loop on the embedded sandbox: a healthy v2 promoted, a failing v3 reverted in Git.
# Options go in DEMO_ARGS, e.g. `make demo DEMO_ARGS="--provider istio --judge sequential --keep"`.
demo: $(STAMP) $(PROMETHEUS)
	$(BIN)/rollout demo $(DEMO_ARGS)

# The README's screenshots of the dashboard and of a report, taken by the browser test during a real release.
screenshots: $(STAMP) $(PROMETHEUS) chromium
	ROLLOUT_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/e2e/test_operator.py -k dashboard

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# The long fault-injection campaign (`make test` runs a short one): the operator SIGKILLed at seeded
# random instants over good and failing releases, Prometheus and Git broken on the way. The seed is
# printed; `make chaos CHAOS_CYCLES=20 CHAOS_SEED=1234` replays one.
CHAOS_CYCLES ?= 100
CHAOS_SEED   ?=
chaos: $(STAMP) $(PROMETHEUS)
	CHAOS_CYCLES=$(CHAOS_CYCLES) CHAOS_SEED=$(CHAOS_SEED) $(BIN)/pytest -q tests/chaos -k test_chaos_long

# Benchmarks print figures and ratios; they never fail on speed. The scale benchmark runs the sandbox
# and the operator as processes with SCALE_SIZES releases each (`make bench SCALE_SIZES=100,500`).
SCALE_SIZES ?= 100,500,1000
bench: $(STAMP)
	$(BIN)/python -m benchmarks.judge --json .cache/bench-judge.json
	$(BIN)/python -m benchmarks.scale --sizes $(SCALE_SIZES) --json .cache/bench-scale.json

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.judge --quick --json .cache/bench-judge-quick.json
	$(BIN)/python -m benchmarks.scale --quick --json .cache/bench-scale-quick.json

clean:
	rm -rf $(VENV) .cache .mypy_cache .pytest_cache .ruff_cache
