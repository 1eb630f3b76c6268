package docs_test

import (
	"context"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// codeBlock is one fenced code block of a Markdown file.
type codeBlock struct {
	file string
	line int
	code string
}

// codeBlocks returns the ```lang blocks of the Markdown files named.
func codeBlocks(t *testing.T, lang string, files ...string) []codeBlock {
	t.Helper()
	re := regexp.MustCompile("(?ms)^```" + regexp.QuoteMeta(lang) + "\n(.*?)^```")
	var blocks []codeBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatchIndex(b, -1) {
			blocks = append(blocks, codeBlock{file: f, line: 1 + strings.Count(string(b[:m[0]]), "\n"),
				code: string(b[m[2]:m[3]])})
		}
	}
	return blocks
}

// TestGuidesCompile: every Go block of the guides is a whole program (or file) that is
// gofmt'ed and compiles against this module as it is, and passes go vet: a guide cannot show
// an API that does not exist or has changed. Programs that start their own server
// (httptest) are run, and must exit cleanly.
func TestGuidesCompile(t *testing.T) {
	guides, err := filepath.Glob("*.md")
	if err != nil || len(guides) == 0 {
		t.Fatalf("no guides found: %v", err)
	}
	blocks := codeBlocks(t, "go", guides...)
	if len(blocks) < 5 {
		t.Fatalf("only %d Go blocks in the guides", len(blocks))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	for _, b := range blocks {
		name := strings.TrimSuffix(b.file, ".md") + ":" + strconv.Itoa(b.line)
		t.Run(name, func(t *testing.T) {
			if !strings.HasPrefix(b.code, "package ") {
				t.Fatalf("%s: a Go block must be a whole file, starting with its package clause", name)
			}
			formatted, err := format.Source([]byte(b.code))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if string(formatted) != b.code {
				t.Errorf("%s is not gofmt'ed; gofmt gives:\n%s", name, formatted)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "main.go")
			if err := os.WriteFile(file, []byte(b.code), 0o644); err != nil {
				t.Fatal(err)
			}
			// Run from this directory, so that the file builds against this module.
			cmd := exec.Command(goBin, "vet", file)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s does not compile or vet:\n%s\n%s", name, out, b.code)
			}
			// A program that brings its own server (httptest) runs to its end.
			if strings.Contains(b.code, "httptest.NewServer") {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := exec.CommandContext(ctx, goBin, "run", file).CombinedOutput()
				if err != nil {
					t.Errorf("%s failed: %v\n%s", name, err, out)
				}
				t.Logf("%s printed:\n%s", name, out)
			}
		})
	}
}
