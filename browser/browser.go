package browser

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// files are the browser modules, their type declarations and package.json, as they are in
// this folder.
//
//go:embed *.js *.d.ts package.json
var files embed.FS

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
	types       string // the .d.ts beside a .js, for X-TypeScript-Types
}

// Handler serves the browser modules of this package from memory (they are embedded in the
// program): herald-socket.js, client.js, their .d.ts type declarations and package.json, at
// the root of the handler's paths ("/herald-socket.js"). Mount it under a prefix with
// http.StripPrefix:
//
//	mux.Handle("/herald/", http.StripPrefix("/herald", browser.Handler()))
//
// so that a page imports "/herald/herald-socket.js" or "/herald/client.js".
//
// Every file is answered with its Content-Type (text/javascript; charset=utf-8 for the
// modules, application/typescript for the declarations, application/json for package.json),
// an ETag computed from its content and Cache-Control: no-cache: browsers revalidate at each
// load and get 304 Not Modified until the program serves a new version. Access-Control-Allow-
// Origin: * lets pages of other origins import the modules (they are public code and carry no
// credentials). GET and HEAD are answered (405 otherwise), ranges included; any other path is
// 404.
//
// The handler is safe for concurrent use; each call of Handler returns a new one.
func Handler() http.Handler {
	h := handler{}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		name := e.Name()
		body, err := files.ReadFile(name)
		if err != nil || e.IsDir() {
			continue
		}
		sum := sha256.Sum256(body)
		f := &file{body: body, contentType: contentType(name),
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
		if d := strings.TrimSuffix(name, ".js") + ".d.ts"; strings.HasSuffix(name, ".js") {
			if _, err := fs.Stat(files, d); err == nil {
				f.types = "./" + d
			}
		}
		h["/"+name] = f
	}
	return h
}

// handler maps each path ("/herald-socket.js") to its file. It is never written after Handler.
type handler map[string]*file

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Access-Control-Allow-Origin", "*")
	if f.types != "" {
		hd.Set("X-TypeScript-Types", f.types)
	}
	// ServeContent answers If-None-Match with 304 (the ETag above), HEAD and ranges.
	http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(f.body))
}

// contentType returns the Content-Type a file is served with.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".d.ts"):
		return "application/typescript; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	}
	return "application/octet-stream"
}
