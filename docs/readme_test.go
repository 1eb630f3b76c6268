package docs_test

import (
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readmeScaffold is the program a fragment of README.md runs in: the imports the fragments
// use, and the few names they leave to the reader (a context, an address, the application's
// check of Basic credentials).
const readmeScaffold = `package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/websocket"
)

// The names the READMEs leave to the reader.
var (
	ctx        = context.Background()
	addr       = "127.0.0.1:8000"
	checkBasic func(*http.Request) (*herald.Credentials, error)
	mux        = http.NewServeMux()
	srv        = &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: time.Second}
	accept     func(*eventsource.EventSource)
)

// Each fragment uses some of the imports only.
var _ = []any{errors.As, fmt.Println, io.WriteString, log.Println, time.Second, herald.NewServer,
	client.New, eventsource.New, websocket.Upgrade}

func main() {
%FRAGMENT%}
`

// TestReadmeSnippets: every Go block of the top-level README.md (and of eventsource's)
// compiles against this module as it is and passes go vet. The READMEs' blocks are fragments
// (the body of a function): each is put, indented one tab, inside main of readmeScaffold, and
// must then be gofmt'ed as written. A whole file (one starting with its package clause) is
// compiled as it is.
func TestReadmeSnippets(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	blocks := codeBlocks(t, "go", "../README.md", "../eventsource/README.md")
	if len(blocks) < 6 {
		t.Fatalf("only %d Go blocks in the READMEs", len(blocks))
	}
	for _, b := range blocks {
		code, name := b.code, strings.TrimPrefix(b.file, "../")+":"+strconv.Itoa(b.line)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			program := code
			if !strings.HasPrefix(code, "package ") {
				var indented strings.Builder
				for l := range strings.Lines(code) {
					if strings.TrimSpace(l) != "" {
						indented.WriteString("\t")
					}
					indented.WriteString(l)
				}
				program = strings.Replace(readmeScaffold, "%FRAGMENT%", indented.String(), 1)
			}
			formatted, err := format.Source([]byte(program))
			if err != nil {
				t.Fatalf("%s does not parse: %v\n%s", name, err, program)
			}
			if string(formatted) != program {
				t.Errorf("%s is not gofmt'ed; inside a function, gofmt gives:\n%s", name, formatted)
			}
			file := filepath.Join(t.TempDir(), "main.go")
			if err := os.WriteFile(file, []byte(program), 0o644); err != nil {
				t.Fatal(err)
			}
			// Run from this directory, so that the file builds against this module.
			if out, err := exec.Command(goBin, "vet", file).CombinedOutput(); err != nil {
				t.Fatalf("%s does not compile or vet:\n%s\n%s", name, out, program)
			}
		})
	}
}

// TestHeraldtestDocCompiles: the test shown in heraldtest's package doc compiles and passes
// vet, as a test file of a package whose application handler is app.
func TestHeraldtestDocCompiles(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../heraldtest/doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var block strings.Builder
	for l := range strings.Lines(f.Doc.Text()) {
		switch {
		case strings.HasPrefix(l, "\tfunc Test"), block.Len() > 0 && (strings.HasPrefix(l, "\t") || l == "\n"):
			block.WriteString(strings.TrimPrefix(l, "\t"))
		case block.Len() > 0:
			goto done
		}
	}
done:
	if block.Len() == 0 {
		t.Fatal("no test function in heraldtest's package doc")
	}
	program := `package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/heraldtest"
)

var app http.Handler = http.NewServeMux()

` + strings.TrimRight(block.String(), "\n") + "\n"
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	file := filepath.Join(t.TempDir(), "app_test.go")
	if err := os.WriteFile(file, []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(goBin, "vet", file).CombinedOutput(); err != nil {
		t.Fatalf("heraldtest's package doc does not compile or vet:\n%s\n%s", out, program)
	}
}
