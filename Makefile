# smcp: developer entry points. `make demo` sets up and runs the main job; `make test` runs every test.
SHELL := /bin/bash
ROOT := $(CURDIR)
export PATH := $(ROOT)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.venv/collections
export ANSIBLE_HOME := $(ROOT)/.ansible
export PYTHONDONTWRITEBYTECODE := 1

HOSTS ?= 3

.PHONY: setup demo test lint unit sanity molecule bench clean collection

setup:  ## install Debian packages, the pinned venv and the collection link (idempotent)
	@scripts/setup.sh

demo: setup  ## the main job on the embedded default
	@scripts/demo.sh $(HOSTS)

test: setup  ## every test: lint, sanity, pytest, molecule scenarios
	@scripts/test.sh all

lint: setup
	@scripts/test.sh lint

unit: setup
	@scripts/test.sh pytest

sanity: setup
	@scripts/test.sh sanity

molecule: setup
	@scripts/test.sh molecule

bench: setup
	@scripts/bench.sh

collection: setup  ## build the collection tarball into dist/
	@mkdir -p dist && ansible-galaxy collection build --force --output-path dist .

clean:
	rm -rf .venv .cache .ansible dist build
