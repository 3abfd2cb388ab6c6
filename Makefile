# reprobox: the two commands of the README.
#   make demo   set everything up and check an example (names a culprit)
#   make test   set everything up and run every test
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 1
DATA_DIR ?= /var/lib/reprobox
IMAGE ?= reprobox/rust
APT_PACKAGES := mmdebstrap disorderfs gcc zlib1g-dev libseccomp-dev git tar gzip xz-utils zstd bzip2 uidmap
# Only the tests need these: runc (start benchmark), containerd (the containerd
# backend's tests start a private daemon of their own), chromium (the HTML report test),
# docker-registry and skopeo (image push, pull and export round trips), cargo (the
# no-config tests: cargo new, cargo metadata on the host; rustup's cargo does too),
# librust-*-dev (real crate sources the fetch tests package into a local registry).
TEST_PACKAGES := runc containerd chromium docker-registry skopeo cargo libxml2-utils librust-serde-dev librust-serde-derive-dev \
	librust-regex-dev librust-aho-corasick-dev librust-memchr-dev
BIN := ./reprobox
# libcontainer applies the builds' seccomp profile only when built with the
# seccomp tag and libseccomp-dev; without it every build is refused.
TAGS := seccomp

# buildkitd for the BuildKit backend's tests (sandbox/buildkit/bktest starts
# private daemons), built from BuildKit's module source: see
# sandbox/buildkit/bktest/build-buildkitd.sh.
BUILDKIT_VERSION := v0.34.2
BUILDKIT_DIR ?= $(HOME)/.cache/reprobox/buildkit-$(BUILDKIT_VERSION)

.PHONY: demo test setup deps image bin lint bench buildkitd
demo: setup
	$(BIN) check examples/leaky-path --image $(IMAGE) --out reprobox-out/leaky-path; \
	  rc=$$?; [ $$rc -eq 1 ] && echo "(exit status 1: not reproducible, as this example is meant to be)"; [ $$rc -le 1 ]

test: setup
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(TEST_PACKAGES)"
	@$(MAKE) --no-print-directory buildkitd
	go vet -tags $(TAGS) ./...
	REPROBOX_IMAGE=$(IMAGE) REPROBOX_DATA_DIR=$(DATA_DIR) go test -tags $(TAGS) -race -count=1 -timeout 60m $$(go list ./... | grep -v '/cmd/reprobox$$')
	# The CLI's end-to-end tests without -race: they run the test binary as
	# reprobox for hundreds of real builds, and the race detector slows its
	# copying, hashing and diffing many times over (every package they use is
	# tested with -race above).
	REPROBOX_IMAGE=$(IMAGE) REPROBOX_DATA_DIR=$(DATA_DIR) go test -tags $(TAGS) -count=1 -timeout 80m ./cmd/reprobox/
	# Image builds compared (default image twice; a small one from its lock):
	# without -race, which slows packing the layer many times over (the test is
	# built only without it).
	go test -tags $(TAGS) -count=1 -timeout 60m -run 'TestBuildReproducible|TestBuildFromLock' -v ./images/

setup: deps bin image

# Debian packages the tool and its tests need, installed when missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# buildkitd and buildctl in $(BUILDKIT_DIR), built once (minutes).
buildkitd:
	@sh sandbox/buildkit/bktest/build-buildkitd.sh $(BUILDKIT_VERSION) $(BUILDKIT_DIR)

bin:
	go build -tags $(TAGS) -o $(BIN) ./cmd/reprobox

# The default image, built once (about two minutes) and kept in $(DATA_DIR);
# built again when this reprobox defines it otherwise (packages, locales, ...).
image: bin
	@$(BIN) image build --if-changed --name $(IMAGE) --data-dir $(DATA_DIR) >/dev/null

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	go vet -tags $(TAGS) ./...
	go run honnef.co/go/tools/cmd/staticcheck@latest -tags $(TAGS) ./...
