package browser_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/browser"
)

func serve(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// TestHandlerFiles: every module, declaration file and package.json of the folder is served
// as it is on disk, with its content type, an ETag and no-cache; nothing else is.
func TestHandlerFiles(t *testing.T) {
	t.Parallel()
	h := browser.Handler()
	served := map[string]bool{}
	matches, err := filepath.Glob("*")
	require.NoError(t, err)
	for _, name := range matches {
		want := ""
		switch {
		case strings.HasSuffix(name, ".d.ts"):
			want = "application/typescript; charset=utf-8"
		case strings.HasSuffix(name, ".js"):
			want = "text/javascript; charset=utf-8"
		case name == "package.json":
			want = "application/json"
		}
		res := serve(t, h, "GET", "/"+name, nil)
		body, _ := io.ReadAll(res.Body)
		if want == "" {
			assert.Equal(t, http.StatusNotFound, res.StatusCode, "%s is not a browser file", name)
			continue
		}
		served[name] = true
		t.Run(name, func(t *testing.T) {
			disk, err := os.ReadFile(name)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, want, res.Header.Get("Content-Type"))
			assert.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			assert.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
			assert.Regexp(t, `^"[A-Za-z0-9_-]{24}"$`, res.Header.Get("ETag"))
			assert.Equal(t, string(disk), string(body))
		})
	}
	for _, name := range []string{"herald-socket.js", "herald-socket.d.ts", "package.json"} {
		assert.True(t, served[name], "%s is served", name)
	}
	res := serve(t, h, "GET", "/herald-socket.js", nil)
	assert.Equal(t, "./herald-socket.d.ts", res.Header.Get("X-TypeScript-Types"))
}

// TestHandlerRevalidation: an If-None-Match with the file's ETag gets 304 without a body;
// another ETag, or another file's, gets the file. Each file has its own ETag, the same from
// one Handler to the next.
func TestHandlerRevalidation(t *testing.T) {
	t.Parallel()
	h := browser.Handler()
	first := serve(t, h, "GET", "/herald-socket.js", nil)
	etag := first.Header.Get("ETag")
	require.NotEmpty(t, etag)
	assert.Equal(t, etag, serve(t, browser.Handler(), "GET", "/herald-socket.js", nil).Header.Get("ETag"))
	assert.NotEqual(t, etag, serve(t, h, "GET", "/herald-socket.d.ts", nil).Header.Get("ETag"))

	for _, tc := range []struct {
		name   string
		header string
		status int
	}{
		{"same", etag, http.StatusNotModified},
		{"weak", "W/" + etag, http.StatusNotModified},
		{"list", `"other", ` + etag, http.StatusNotModified},
		{"star", "*", http.StatusNotModified},
		{"other", `"other"`, http.StatusOK},
		{"other-file", serve(t, h, "GET", "/package.json", nil).Header.Get("ETag"), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(t, h, "GET", "/herald-socket.js", http.Header{"If-None-Match": {tc.header}})
			body, _ := io.ReadAll(res.Body)
			assert.Equal(t, tc.status, res.StatusCode)
			assert.Equal(t, etag, res.Header.Get("ETag"))
			if tc.status == http.StatusNotModified {
				assert.Empty(t, body)
			} else {
				assert.NotEmpty(t, body)
			}
		})
	}
}

// TestHandlerRefuses: paths that are not files of the folder (the folder itself, Go sources,
// tests, traversal, the unstripped prefix) get 404; methods other than GET and HEAD get 405.
func TestHandlerRefuses(t *testing.T) {
	t.Parallel()
	h := browser.Handler()
	for _, path := range []string{"/", "", "/browser.go", "/doc.go", "/browser_test.go", "/nope.js",
		"/herald/herald-socket.js", "/../browser/herald-socket.js", "/HERALD-SOCKET.JS", "/herald-socket.js/",
		"/herald-socket", "/./herald-socket.js"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = path
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusNotFound, rec.Code, "GET %q", path)
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		res := serve(t, h, method, "/herald-socket.js", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, method)
		assert.Equal(t, "GET, HEAD", res.Header.Get("Allow"))
	}
	res := serve(t, h, "HEAD", "/herald-socket.js", nil)
	body, _ := io.ReadAll(res.Body)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Empty(t, body)
	assert.NotEmpty(t, res.Header.Get("Content-Length"))
}

// TestHandlerMounted: under /herald/ with StripPrefix, as the package doc mounts it.
func TestHandlerMounted(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/herald/", http.StripPrefix("/herald", browser.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/herald/herald-socket.js?v=1")
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "export class HeraldSocket")
	res2, err := http.Get(srv.URL + "/herald/browser.go")
	require.NoError(t, err)
	res2.Body.Close()
	assert.Equal(t, http.StatusNotFound, res2.StatusCode)
}

// TestPackageJSON: package.json names the package, is an ES module package, and every file
// it names (main, types, each export's module and declarations) is served.
func TestPackageJSON(t *testing.T) {
	t.Parallel()
	var pkg struct {
		Name    string                     `json:"name"`
		Type    string                     `json:"type"`
		Types   string                     `json:"types"`
		Exports map[string]json.RawMessage `json:"exports"`
	}
	b, err := os.ReadFile("package.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &pkg))
	assert.Equal(t, "@herald-go/browser", pkg.Name)
	assert.Equal(t, "module", pkg.Type)
	assert.Equal(t, "./client.d.ts", pkg.Types)
	var dot, socket struct{ Types, Default string }
	require.NoError(t, json.Unmarshal(pkg.Exports["."], &dot))
	require.NoError(t, json.Unmarshal(pkg.Exports["./herald-socket"], &socket))
	assert.Equal(t, "./client.js", dot.Default)
	assert.Equal(t, "./client.d.ts", dot.Types)
	assert.Equal(t, "./herald-socket.js", socket.Default)
	assert.Equal(t, "./herald-socket.d.ts", socket.Types)
	h := browser.Handler()
	for _, f := range []string{pkg.Types, dot.Default, dot.Types, socket.Default, socket.Types} {
		assert.Equal(t, http.StatusOK, serve(t, h, "GET", strings.TrimPrefix(f, "."), nil).StatusCode, f)
	}
	// "." re-exports HeraldSocket, so that one import gives a page both.
	res := serve(t, h, "GET", "/client.js", nil)
	body, _ := io.ReadAll(res.Body)
	assert.Regexp(t, `(?m)^export \{[^}]*\bHeraldSocket\b[^}]*\}`, string(body))
	assert.Regexp(t, `(?m)^export class Client\b`, string(body))
}
