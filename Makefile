# Every target runs the project's own set-up first; it is idempotent and takes
# seconds when nothing is missing.
SCENARIO ?= enterprise-firewall
LAB := .venv/bin/lab
PYTEST := .venv/bin/python -m pytest

.PHONY: setup run test unit lint bench clean docs

setup:
	@scripts/setup.sh

run: setup
	$(LAB) run $(SCENARIO)

test: setup
	$(PYTEST) -q -ra tests

unit: setup
	$(PYTEST) -q -m "not root" tests

lint: setup
	.venv/bin/ruff check lab tests benchmarks scripts/docs
	.venv/bin/ruff format --check lab tests benchmarks scripts/docs

bench: setup
	.venv/bin/python benchmarks/run_speed.py

clean: setup
	$(LAB) clean

# The documentation site: docs/ and mkdocs.yml into site/ (git-ignored); --strict fails on
# any warning (a broken link, a page missing from the navigation).
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet
