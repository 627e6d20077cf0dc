# Every target runs the project's own set-up first; it is idempotent and takes
# seconds when nothing is missing.
SCENARIO ?= enterprise-firewall
LAB := .venv/bin/lab
PYTEST := .venv/bin/python -m pytest

.PHONY: setup run test unit lint bench clean docs vm-check

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
	.venv/bin/lint-imports

bench: setup
	.venv/bin/python benchmarks/speed.py --priority

clean: setup
	$(LAB) clean

# The documentation site: docs/ and mkdocs.yml into site/ (git-ignored); --strict fails on
# any warning (a broken link, a page missing from the navigation).
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet

# The Vagrant VM proven on this machine (libvirt/KVM, a box built here from Debian packages):
# boots it, lets scripts/setup.sh set it up, runs the lab with aiortc, Chromium and kvs-js
# viewers in it and destroys it, leaving nothing. Root only; installs its own host packages.
vm-check:
	bash scripts/vm-check.sh
