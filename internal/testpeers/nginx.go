package testpeers

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nginxConf is nginx.conf for StartNginx: Debian 12's /etc/nginx/nginx.conf (nginx 1.22.1)
// with its comments left out, and one server that proxies everything to the upstream. What
// differs from Debian's file:
//
//   - pid, error_log, access_log and the five temporary paths (client_body, proxy, fastcgi,
//     uwsgi, scgi): in the instance's directory instead of /run and /var/log/nginx (and the
//     compiled-in /var/lib/nginx);
//   - `user www-data;` only when started as root (nginx ignores it otherwise, with a warning);
//   - the ssl_protocols and ssl_prefer_server_ciphers lines are left out (nothing here speaks
//     TLS), and so are the includes of modules-enabled/*.conf, conf.d/*.conf (both empty as
//     installed) and sites-enabled/* (Debian's default site, serving /var/www/html on port 80);
//   - the server: `listen 127.0.0.1:PORT` and `location / { proxy_pass UPSTREAM; }`, plus
//     `proxy_ignore_headers X-Accel-Buffering;` when buffered.
//
// Everything else has nginx's defaults, which are what the fallback must get through: no
// proxy_set_header (so Upgrade and Connection are not passed on: a WebSocket handshake reaches
// the upstream as an ordinary GET, and its answer is never a 101), proxy_http_version 1.0 to
// the upstream, proxy_buffering on (which an upstream turns off per response with
// X-Accel-Buffering: no), proxy_buffers 8 4k|8k, proxy_read_timeout 60s, and gzip on for
// text/html only.
const nginxConf = `# herald's testpeers nginx.conf: Debian 12's default, see nginxConf in nginx.go.
{{USER}}worker_processes auto;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log;
events {
	worker_connections 768;
}
http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log {{DIR}}/access.log;
	gzip on;
	# The instance's own temporary files.
	client_body_temp_path {{DIR}}/body;
	proxy_temp_path {{DIR}}/proxy;
	fastcgi_temp_path {{DIR}}/fastcgi;
	uwsgi_temp_path {{DIR}}/uwsgi;
	scgi_temp_path {{DIR}}/scgi;
# The site under test:
{{SITE}}
}
`

// nginxProxySite is StartNginx's site in nginxConf: one server proxying everything upstream.
const nginxProxySite = `	server {
		listen 127.0.0.1:{{PORT}};
		server_name _;
		location / {
			proxy_pass {{UPSTREAM}};
{{BUFFERED}}		}
	}
`

// StartNginx runs Debian's nginx as a reverse proxy to upstream (a base URL such as an
// httptest.Server's URL: http or https, host and port, no path) for the length of the test,
// and returns its own base URL, http://127.0.0.1:PORT. Every request is passed to upstream
// with its path and query unchanged, with Debian's and nginx's defaults otherwise (see
// nginxConf): HTTP/1.0 to the upstream, Upgrade and Connection not passed on (so no
// WebSocket gets through), and responses buffered unless the upstream sends
// X-Accel-Buffering: no, as herald's event streams do.
//
// With buffered set, nginx ignores X-Accel-Buffering (proxy_ignore_headers) and buffers every
// response: a stream's small events then stay in nginx until its buffers fill or the upstream
// ends the response, so a client must fall back to requests that end (long-polling).
//
// nginx runs in the foreground (daemon off) with its configuration, pid file, logs and
// temporary files in a directory of its own; it is killed, with its workers, when the test
// ends, and its logs go to the test log if the test failed. Without nginx the test skips, or
// fails under HERALD_REQUIRE_PEERS=1.
func StartNginx(t testing.TB, upstream string, buffered bool) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		t.Fatalf("StartNginx: upstream %q is not a base URL such as http://127.0.0.1:8000", upstream)
	}
	bufferedLine := ""
	if buffered {
		bufferedLine = "\t\t\tproxy_ignore_headers X-Accel-Buffering;\n"
	}
	site := strings.NewReplacer("{{UPSTREAM}}", u.Scheme+"://"+u.Host,
		"{{BUFFERED}}", bufferedLine).Replace(nginxProxySite)
	bin, base := runNginx(t, site)
	mode := "buffering as by default"
	if buffered {
		mode = "buffering every response (X-Accel-Buffering ignored)"
	}
	t.Logf("%s listening on %s, proxying to %s, %s", version(bin, "-v"), base, u.Host, mode)
	return base
}

// runNginx runs nginx with site in nginxConf (see StartNginx for how) and returns the binary's
// path and http://127.0.0.1:PORT.
func runNginx(t testing.TB, site string) (bin, base string) {
	t.Helper()
	bin = sbin(t, "nginx", "nginx")
	dir := daemonDir(t, "nginx", "")
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user www-data;\n" // as Debian's; dir is 0755, and nginx gives the workers its temporary paths
	}
	conf := strings.NewReplacer("{{DIR}}", dir, "{{USER}}", userLine, "{{SITE}}", site).Replace(nginxConf)
	port := startDaemon(t, daemonSpec{name: "nginx", dir: dir, confName: "nginx.conf", conf: conf,
		argv: []string{bin, "-p", dir + "/", "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;"},
		logs: []string{"error.log", "access.log"}})
	return bin, "http://127.0.0.1:" + strconv.Itoa(port)
}
