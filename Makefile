# raddraft — quick start: `make demo`, `make test`.
SHELL := /bin/bash
APT_PACKAGES := orthanc orthanc-dicomweb dcmtk
TEST_APT_PACKAGES := chromium openssl libgdcm-tools dicom3tools python3-hl7
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps test-deps build fixtures lint layers typecheck clean

demo: deps node_modules/.stamp build fixtures
	node dist/cli.js demo

test: deps test-deps node_modules/.stamp fixtures
	npm run typecheck
	npm run lint
	npm run layers
	npm test

## Debian packages the demo and the tests run against (Orthanc with DICOMweb, DCMTK), and the browser tests' Chromium.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))

test-deps:
	$(call apt_install,$(TEST_APT_PACKAGES))

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: node_modules/.stamp
	npm run build

## Sample DICOM studies and one radiograph per transfer syntax (about 150 MB, generated, identical on every run).
fixtures: fixtures/generated/.stamp
fixtures/generated/.stamp: fixtures/generate.ts fixtures/transfer-syntaxes.ts fixtures/colour-scans.ts fixtures/eval-set.ts src/demo/phantom.ts src/seeded-random.ts node_modules/.stamp
	rm -rf fixtures/generated
	npx tsx fixtures/generate.ts
	@touch $@

lint: node_modules/.stamp
	npm run lint

## The floors of DESIGN §2: a back-edge (an import of a higher or same-floor room) fails the build.
layers: node_modules/.stamp
	npm run layers

typecheck: node_modules/.stamp
	npm run typecheck

clean:
	rm -rf dist fixtures/generated coverage
