package testpeers

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// squidConf is squid.conf for StartSquid: Debian 12's /etc/squid/squid.conf (squid 5.7) with
// its comments left out, and the access rules exactly as Debian ships them. What differs from
// Debian's file:
//
//   - http_port: 127.0.0.1 and a free port instead of 3128 on every address;
//   - pid_filename, cache_log, access_log and coredump_dir: in the instance's directory instead
//     of /run/squid.pid, /var/log/squid and /var/spool/squid;
//   - `include /etc/squid/conf.d/*.conf` is replaced by what Debian's only file there,
//     debian.conf, sets: logfile_rotate 0 (its `http_access allow localnet` is commented out,
//     as shipped);
//   - nothing had to change for a test server on loopback: squid 5.7's default leaves
//     `http_access deny to_localhost` commented out and allows `localhost` as a source, and the
//     test servers' ports are in Safe_ports (1025-65535). Squid 6 (Debian 13) turns
//     `deny to_localhost` on by default: it is deliberately absent here.
//
// Like Debian's, it has no cache_dir: the cache is in memory only (cache_mem 256 MB by
// default), so no `squid -z` is needed. Everything not written here has squid's default: in
// particular no http_upgrade_request_protocols rule, so squid drops the Upgrade header from
// the requests it forwards (and a WebSocket handshake sent as a plain HTTP request reaches the
// server as an ordinary GET), and CONNECT is refused (403) to every port but 443.
const squidConf = `# StartSquid's squid.conf: Debian 12's default, see squidConf in squid.go.
acl localnet src 0.0.0.1-0.255.255.255	# RFC 1122 "this" network (LAN)
acl localnet src 10.0.0.0/8		# RFC 1918 local private network (LAN)
acl localnet src 100.64.0.0/10		# RFC 6598 shared address space (CGN)
acl localnet src 169.254.0.0/16 	# RFC 3927 link-local (directly plugged) machines
acl localnet src 172.16.0.0/12		# RFC 1918 local private network (LAN)
acl localnet src 192.168.0.0/16		# RFC 1918 local private network (LAN)
acl localnet src fc00::/7       	# RFC 4193 local private network range
acl localnet src fe80::/10      	# RFC 4291 link-local (directly plugged) machines
acl SSL_ports port 443
acl Safe_ports port 80		# http
acl Safe_ports port 21		# ftp
acl Safe_ports port 443		# https
acl Safe_ports port 70		# gopher
acl Safe_ports port 210		# wais
acl Safe_ports port 1025-65535	# unregistered ports
acl Safe_ports port 280		# http-mgmt
acl Safe_ports port 488		# gss-http
acl Safe_ports port 591		# filemaker
acl Safe_ports port 777		# multiling http
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access allow localhost manager
http_access deny manager
# Debian: include /etc/squid/conf.d/*.conf, whose debian.conf sets only this:
logfile_rotate 0
http_access allow localhost
http_access deny all
http_port 127.0.0.1:{{PORT}}
coredump_dir {{DIR}}
refresh_pattern ^ftp:		1440	20%	10080
refresh_pattern ^gopher:	1440	0%	1440
refresh_pattern -i (/cgi-bin/|\?) 0	0%	0
refresh_pattern .		0	20%	4320
# The instance's own files.
pid_filename {{DIR}}/squid.pid
cache_log {{DIR}}/cache.log
access_log stdio:{{DIR}}/access.log
`

// StartSquid runs Debian's squid as a forward proxy for the length of the test and returns its
// URL, http://127.0.0.1:PORT, for http.ProxyURL, websocket.ProxyURL or HTTP_PROXY. Its access
// rules are Debian's defaults, which let a client on loopback reach a server on loopback (see
// squidConf for the exact differences): it refuses CONNECT to any port but 443 with 403, drops
// Upgrade from the requests it forwards, and passes plain HTTP requests and responses,
// streamed responses included, adding Via and X-Forwarded-For.
//
// Pass the URL explicitly (http.ProxyURL, websocket.ProxyURL) or through
// websocket.ProxyEnvironment: net/http's ProxyFromEnvironment never proxies requests to
// loopback addresses, whatever HTTP_PROXY says (nor does Chromium without
// --proxy-bypass-list='<-loopback>').
//
// squid runs in the foreground (-N) with its configuration, pid file and logs in a directory of
// its own; it is killed, with its helpers, when the test ends, and its logs go to the test log
// if the test failed. Without squid the test skips, or fails under HERALD_REQUIRE_PEERS=1.
func StartSquid(t testing.TB) string {
	t.Helper()
	bin := sbin(t, "squid", "squid")
	dir := daemonDir(t, "squid", "proxy") // squid's cache_effective_user, when started as root
	conf := strings.ReplaceAll(squidConf, "{{DIR}}", dir)
	port := startDaemon(t, daemonSpec{name: "squid", dir: dir, confName: "squid.conf", conf: conf,
		// -n: a service name of its own, which names squid's shared memory segments, left in
		// /dev/shm by a squid that is killed.
		argv:     []string{bin, "-N", "-n", "herald{{PORT}}", "-f", filepath.Join(dir, "squid.conf")},
		logs:     []string{"cache.log", "access.log"},
		leftover: "/dev/shm/herald{{PORT}}-*",
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	t.Logf("%s listening on %s", version(bin, "-v"), url)
	return url
}
