# herald's tasks. `make test` is the one command CI runs (.ci/run); it installs what the tests
# need first, idempotently: the pinned Node packages of the real peers and, when running as root
# without one, Debian's chromium for the browser tests.

GO          ?= go
PEERS_DIR   := internal/testpeers
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s

.PHONY: test peers node-peers chromium vet lint fuzz interop bench

test: peers vet
	HERALD_REQUIRE_PEERS=1 $(GO) test -race -count=1 -timeout 8m ./...

# peers installs the real peers used by the tests.
peers: node-peers chromium

node-peers: $(PEERS_DIR)/node_modules/.herald-stamp

$(PEERS_DIR)/node_modules/.herald-stamp: $(PEERS_DIR)/package.json $(PEERS_DIR)/package-lock.json
	cd $(PEERS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# chromium: Debian's package, installed only when missing and only as root (a developer without
# root installs it by hand; the browser tests say so when it is absent).
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
		dpkg-query -W chromium; \
	else echo "chromium is missing: the browser tests will fail (apt-get install chromium)"; fi

vet:
	$(GO) vet ./...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# interop runs only the tests against real peers (Node, Chromium, proxies), verbosely.
interop: peers
	HERALD_REQUIRE_PEERS=1 $(GO) test -race -count=1 -v -run 'Peer|Interop|Browser|Differential' ./...

# bench compares herald with the peer libraries side by side (see bench/README.md).
bench:
	cd bench && $(GO) run ./cmd/bench
