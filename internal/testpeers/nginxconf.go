package testpeers

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

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
// nginxConf), for the length of the test, and returns http://127.0.0.1:PORT. site must
// listen on "127.0.0.1:{{PORT}}", which is replaced by a free port. nginx runs as StartNginx
// runs it (foreground, its own directory, killed when the test ends, logs in the test log on
// failure); without nginx the test skips, or fails under HERALD_REQUIRE_PEERS=1.
func StartNginxSite(t testing.TB, site string) string {
	t.Helper()
	if !strings.Contains(site, "listen 127.0.0.1:{{PORT}}") {
		t.Fatalf("StartNginxSite: the site must listen on 127.0.0.1:{{PORT}}:\n%s", site)
	}
	bin, base := runNginx(t, site)
	t.Logf("%s listening on %s with the site under test", version(bin, "-v"), base)
	return base
}
