# The two commands of the README: `make up` starts everything, `make test` runs the whole suite.
.PHONY: up test lint bench bootstrap system-postgres browser realtime-js

bootstrap:
	@bash scripts/bootstrap.sh

up: bootstrap
	.venv/bin/tripsage up

system-postgres:
	@bash scripts/system-postgres.sh install

browser:
	@bash scripts/browser.sh

# The official realtime-js client for tests/integration/realtime/test_realtime_js.py (skipped without node).
realtime-js:
	@if command -v npm >/dev/null; then cd tests/js && npm ci --no-audit --no-fund --loglevel=error; fi

lint: bootstrap
	.venv/bin/ruff format --check src tests testkit bench scripts
	.venv/bin/ruff check src tests testkit bench scripts
	.venv/bin/mypy
	PYTHONPATH=src .venv/bin/lint-imports  # the import contracts in pyproject.toml (PYTHONPATH: this checkout's code)

test: bootstrap system-postgres browser realtime-js lint
	.venv/bin/pytest

bench: bootstrap system-postgres
	.venv/bin/python bench/run.py
