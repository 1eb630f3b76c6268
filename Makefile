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

# proxies: Debian's squid and nginx, for the tests of the plain-HTTP fallback (internal/testpeers'
# StartSquid and StartNginx run an instance of their own per test, on a free loopback port).
# Installed like chromium: only when missing and only as root. Debian's own services are neither
# started by the install (a policy-rc.d that says no, for the install only, unless the machine
# has one) nor left enabled, so nothing is left listening on ports 80 and 3128. The install prints
# the versions (dpkg-query); Debian 12 gave squid 5.7-2+deb12u6 and nginx 1.22.1-9+deb12u12.
.PHONY: proxies
peers: proxies
proxies:
	@need=""; for p in squid nginx; do \
		[ -x /usr/sbin/$$p ] || command -v $$p >/dev/null 2>&1 || need="$$need $$p"; \
	done; \
	if [ -z "$$need" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's$$need for the proxy tests"; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			trap 'rm -f /usr/sbin/policy-rc.d' EXIT; trap 'exit 1' HUP INT TERM; \
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d; \
		fi; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need >/dev/null && \
		for s in $$need; do \
			{ systemctl disable --now $$s || invoke-rc.d $$s stop; } >/dev/null 2>&1 || true; \
		done && \
		dpkg-query -W $$need; \
	else echo "$$need missing: the proxy tests will fail (apt-get install$$need)"; fi

# redis: Debian's redis-server (and redis-tools' redis-cli), for the tests of broker/redis
# (internal/testpeers' StartRedis, StartSentinel and StartRedisCluster run instances of their own
# on free loopback ports). Installed like proxies: only when missing, only as root, with Debian's
# service neither started by the install nor left enabled (nothing is left on port 6379). Debian 12
# gave redis-server 5:7.0.15-1~deb12u10.
.PHONY: redis
peers: redis
redis:
	@if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's redis-server for the broker/redis tests"; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			trap 'rm -f /usr/sbin/policy-rc.d' EXIT; trap 'exit 1' HUP INT TERM; \
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d; \
		fi; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null && \
		{ { systemctl disable --now redis-server || invoke-rc.d redis-server stop; } >/dev/null 2>&1 || true; } && \
		dpkg-query -W redis-server redis-tools; \
	else echo "redis-server missing: the broker/redis tests will fail (apt-get install redis-server)"; fi

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

# soak runs the soak and fault suite's long version (soak/README.md): thousands of connections
# per transport for minutes, without -race (its goroutine limit is 8128), and prints a table.
# `make test` runs the short version with -race, as ./soak is one of ./... (about 35 s).
.PHONY: soak
soak:
	$(GO) test -count=1 -timeout 40m -v -run '^TestSoak$$' ./soak -soak.long
