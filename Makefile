# The two commands of the README: `make up` starts everything, `make test` runs the whole suite.
.PHONY: up test lint bench bootstrap system-postgres browser

bootstrap:
	@bash scripts/bootstrap.sh

up: bootstrap
	.venv/bin/tripsage up

system-postgres:
	@bash scripts/system-postgres.sh install

browser:
	@bash scripts/browser.sh

lint: bootstrap
	.venv/bin/ruff format --check src tests bench scripts
	.venv/bin/ruff check src tests bench scripts
	.venv/bin/mypy

test: bootstrap system-postgres browser lint
	.venv/bin/pytest

bench: bootstrap system-postgres
	.venv/bin/python bench/run.py
