package docs_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// packageDocScaffold is the function a code block of a package doc runs in: the imports the
// blocks use, and the names they take from their surroundings (a handler's w and r, a
// context, a mux, an address, an echo's callbacks).
const packageDocScaffold = `package main

import (
	"context"
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

// Each block uses some of the imports only.
var _ = []any{context.Background, fmt.Println, io.WriteString, log.Println, time.Second,
	herald.NewServer, client.New, eventsource.New, websocket.Upgrade}

var (
	mux       = http.NewServeMux()
	addr      = "127.0.0.1:8000"
	opts      *websocket.Options
	onMessage func(c *websocket.Conn, typ websocket.MessageType, data []byte)
	onClose   func(c *websocket.Conn, err error)
)

func main() {}

func block(ctx context.Context, w http.ResponseWriter, r *http.Request) {
%BLOCK%}
`

// TestPackageDocBlocks: the code blocks of the package docs of herald, websocket,
// eventsource and client compile against this module as they are, inside a function. They are fragments: a
// line "..." and a body "{ ... }" stand for the reader's own code and are dropped, and a
// variable the fragment declares and leaves to the reader ("declared and not used") is
// allowed. Any other error fails the test: a package doc cannot show an API that does not
// exist or has changed.
func TestPackageDocBlocks(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	unused := regexp.MustCompile(`declared and not used`)
	for _, pkg := range []string{".", "websocket", "eventsource", "client"} {
		file := filepath.Join("..", pkg, "doc.go")
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		blocks := docBlocks(f.Doc.Text())
		if len(blocks) == 0 {
			t.Errorf("%s: no code block", file)
		}
		for i, b := range blocks {
			name := strings.TrimPrefix(filepath.ToSlash(file), "../") + "#" + strconv.Itoa(i+1)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				program := strings.Replace(packageDocScaffold, "%BLOCK%", b, 1)
				main := filepath.Join(t.TempDir(), "main.go")
				if err := os.WriteFile(main, []byte(program), 0o644); err != nil {
					t.Fatal(err)
				}
				// -e: every error, so that one the fragment may have ("declared and not
				// used") hides no other.
				out, err := exec.Command(goBin, "build", "-gcflags=-e", "-o", os.DevNull, main).CombinedOutput()
				if err == nil {
					return
				}
				var errs []string
				for l := range strings.Lines(string(out)) {
					if strings.Contains(l, "main.go:") && !unused.MatchString(l) {
						errs = append(errs, l)
					}
				}
				if len(errs) > 0 || !strings.Contains(string(out), "main.go:") {
					t.Fatalf("%s does not compile:\n%s\n%s", name, out, program)
				}
			})
		}
	}
}

// docBlocks returns the code blocks of a doc comment's text (its tab-indented runs), each
// indented for the body of a function, with the "..." placeholders dropped.
func docBlocks(text string) []string {
	var blocks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			blocks = append(blocks, cur.String())
			cur.Reset()
		}
	}
	for l := range strings.Lines(text) {
		switch {
		case strings.HasPrefix(l, "\t"):
			if strings.TrimSpace(l) == "..." {
				continue
			}
			cur.WriteString("\t" + strings.ReplaceAll(l, "{ ... }", "{}"))
		case l == "\n" && cur.Len() > 0:
			cur.WriteString("\n")
		default:
			flush()
		}
	}
	flush()
	return blocks
}
