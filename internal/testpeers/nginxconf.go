package testpeers

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// nginxSiteConf is nginx.conf for StartNginxSite: Debian's main configuration as in nginxConf
// (instance paths, no includes of sites), with the caller's http-context configuration (a
// guide's upstream, map and server blocks) in place of the one proxying server.
const nginxSiteConf = `# StartNginxSite's nginx.conf: Debian 12's default main part, see nginxConf in nginx.go.
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
	client_body_temp_path {{DIR}}/body;
	proxy_temp_path {{DIR}}/proxy;
	fastcgi_temp_path {{DIR}}/fastcgi;
	uwsgi_temp_path {{DIR}}/uwsgi;
	scgi_temp_path {{DIR}}/scgi;
# The site under test:
{{SITE}}
}
`

// CodeBlock returns the body of the first fenced code block of the given language (such as
// "nginx") in the Markdown file at path, failing the test when there is none: tests run the
// configuration a guide gives, so that the guide and the test cannot drift apart.
func CodeBlock(t testing.TB, path, lang string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the guide: %v", err)
	}
	re := regexp.MustCompile("(?ms)^```" + regexp.QuoteMeta(lang) + "\n(.*?)^```")
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no ```%s block", path, lang)
	}
	return string(m[1])
}

// Substitute replaces each old string of pairs (old, new, old, new, ...) in conf, failing the
// test when one does not occur exactly once: a guide that changes its configuration makes the
// test say which line it no longer finds, instead of testing something else.
func Substitute(t testing.TB, conf string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(conf, pairs[i]); n != 1 {
			t.Fatalf("the configuration has %q %d times, not once:\n%s", pairs[i], n, conf)
		}
		conf = strings.Replace(conf, pairs[i], pairs[i+1], 1)
	}
	return conf
}

// StartNginxSite runs Debian's nginx with site, an http-context configuration (upstream, map
// and server blocks, as a guide gives them), inside Debian's main configuration (see
// nginxSiteConf), for the length of the test, and returns http://127.0.0.1:PORT. site must
// listen on "127.0.0.1:{{PORT}}", which is replaced by a free port. nginx runs as StartNginx
// runs it (foreground, its own directory, killed when the test ends, logs in the test log on
// failure); without nginx the test skips, or fails under HERALD_REQUIRE_PEERS=1.
func StartNginxSite(t testing.TB, site string) string {
	t.Helper()
	if !strings.Contains(site, "listen 127.0.0.1:{{PORT}}") {
		t.Fatalf("StartNginxSite: the site must listen on 127.0.0.1:{{PORT}}:\n%s", site)
	}
	bin := sbin(t, "nginx", "nginx")
	dir := daemonDir(t, "nginx", "")
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user www-data;\n"
	}
	conf := strings.NewReplacer("{{DIR}}", dir, "{{USER}}", userLine, "{{SITE}}", site).Replace(nginxSiteConf)
	port := startDaemon(t, daemonSpec{name: "nginx", dir: dir, confName: "nginx.conf", conf: conf,
		argv: []string{bin, "-p", dir + "/", "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;"},
		logs: []string{"error.log", "access.log"}})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	t.Logf("%s listening on %s with the site under test", version(bin, "-v"), base)
	return base
}
