# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install browser schema vendor-graphiql vendor-charts translations clean

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./client -e '.[sandbox,dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the sandbox agencies and the gateway with its query page (Ctrl-C stops all).
demo: $(STAMP)
	$(BIN)/gateway demo

## Browser tests drive Debian's Chromium (never a browser a test tool downloads).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

## The whole test suite (PostgreSQL and Redis tests run when they answer; CI=true requires them).
## Three workers on two cores: most integration tests wait on servers and processes.
## Work stealing: a worker that runs dry takes tests queued behind a long one.
TEST_WORKERS ?= 3
test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r gateway connectors schema policies keys sandbox client/lienthong_client
	$(BIN)/gateway schema export --check
	$(BIN)/gateway connectors schema --check

## Load benchmark on loopback: prints a table and saves it under bench/results/.
bench: $(STAMP)
	$(BIN)/python -m bench

schema: $(STAMP)
	$(BIN)/gateway schema export
	$(BIN)/gateway connectors schema

## Collect the pages' strings (babel.cfg) and merge them into the Vietnamese and English
## catalogues under gateway/web/translations/; then write the new Vietnamese msgstrs.
translations: $(STAMP)
	mkdir -p build
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output \
		--project gateway -o build/messages.pot .
	$(BIN)/pybabel update -i build/messages.pot -d gateway/web/translations \
		--width 100 --no-fuzzy-matching --ignore-obsolete

## Re-fetch the vendored query page assets from the npm registry and rewrite their sums.
vendor-graphiql:
	rm -rf build/vendor && mkdir -p build/vendor
	cd build/vendor && npm pack --silent graphiql@3.8.3 react@18.3.1 react-dom@18.3.1 >/dev/null \
		&& for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	cp build/vendor/graphiql-3.8.3/package/graphiql.min.js build/vendor/graphiql-3.8.3/package/graphiql.min.css \
		build/vendor/react-18.3.1/package/umd/react.production.min.js \
		build/vendor/react-dom-18.3.1/package/umd/react-dom.production.min.js gateway/web/static/graphiql/
	cd gateway/web/static/graphiql && sha256sum *.js *.css > SHA256SUMS

## Re-fetch the vendored chart library of the operator's dashboard and rewrite its sums.
vendor-charts:
	rm -rf build/vendor-charts && mkdir -p build/vendor-charts
	cd build/vendor-charts && npm pack --silent uplot@1.6.32 >/dev/null && tar xzf uplot-1.6.32.tgz
	mkdir -p gateway/web/static/vendor/uplot
	cp build/vendor-charts/package/dist/uPlot.iife.min.js build/vendor-charts/package/dist/uPlot.min.css \
		build/vendor-charts/package/LICENSE gateway/web/static/vendor/uplot/
	echo "uplot 1.6.32, dist/uPlot.iife.min.js, dist/uPlot.min.css and LICENSE of the npm package" \
		> gateway/web/static/vendor/uplot/VERSION
	cd gateway/web/static/vendor/uplot && sha256sum *.js *.css > SHA256SUMS

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
