package docs_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/internal/testpeers"
)

// runNode runs script with Node and the pinned packages of internal/testpeers (the official
// @hapi/nes client, ws), and returns its standard output's lines as they come.
func runNode(t *testing.T, ctx context.Context, script string) <-chan string {
	t.Helper()
	node := testpeers.Node(t)
	file := filepath.Join(t.TempDir(), "snippet.js")
	require.NoError(t, os.WriteFile(file, []byte(script), 0o644))
	cmd := exec.CommandContext(ctx, node, file)
	cmd.Dir = testpeers.Dir()
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(testpeers.Dir(), "node_modules"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	lines := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node's standard error:\n%s", stderr.String())
		}
	})
	return lines
}

// next returns the next line, failing the test when none comes in time.
func next(t *testing.T, lines <-chan string, what string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		require.True(t, ok, "node exited before %s", what)
		return l
	case <-time.After(15 * time.Second):
		t.Fatalf("no %s from node", what)
		return ""
	}
}

// TestPeerNodeLinesFromTheDocs runs the Node lines of docs/nes-server.md, as written, with the
// pinned @hapi/nes client against a herald server like the guide's (direct auth with
// john:secret, route "hello", subscription /item/{id}): the main module's way connects,
// requests and receives a publication; the lib/client way, with its Client.WebSocket line,
// connects too.
func TestPeerNodeLinesFromTheDocs(t *testing.T) {
	blocks := codeBlocks(t, "js", "nes-server.md")
	require.Len(t, blocks, 2, "the guide's Node blocks: the main module's way and lib/client's")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "world!") })
	nes := herald.NewServer(mux, &herald.Options{Auth: &herald.AuthOptions{
		Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			user, pass, ok := r.BasicAuth()
			if !ok || user != "john" || pass != "secret" {
				return nil, herald.NewError(http.StatusUnauthorized, "who?")
			}
			return &herald.Credentials{User: user}, nil
		},
	}})
	nes.Route("hello", "GET", "/h")
	nes.Subscription("/item/{id}", nil)
	hs := httptest.NewServer(nes)
	defer hs.Close()
	defer nes.Close()
	url := "ws://" + strings.TrimPrefix(hs.URL, "http://")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("require('@hapi/nes')", func(t *testing.T) {
		script := testpeers.Substitute(t, blocks[0].code, "'ws://127.0.0.1:8000'", "'"+url+"'")
		lines := runNode(t, ctx, script)
		assert.Equal(t, "world!", next(t, lines, "the request's payload"))
		// The subscription is made right after; publish until the update is printed.
		got := make(chan string, 1)
		go func() {
			l, ok := <-lines
			if ok {
				got <- l
			}
		}()
		for {
			require.NoError(t, nes.Publish("/item/5", map[string]int{"id": 5}, nil))
			select {
			case l := <-got:
				assert.Equal(t, "{ id: 5 }", l)
				return
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				t.Fatal("no update printed")
			}
		}
	})

	t.Run("require('@hapi/nes/lib/client')", func(t *testing.T) {
		script := blocks[1].code + `
const client = new Client('` + url + `');
client.connect({ auth: { headers: { authorization: 'Basic am9objpzZWNyZXQ=' } } })
  .then(() => client.request('hello'))
  .then(({ payload }) => { console.log(payload); process.exit(0); },
        (err) => { console.log('error: ' + err.message); process.exit(1); });
`
		assert.Equal(t, "world!", next(t, runNode(t, ctx, script), "the request's payload"))

		// Without its Client.WebSocket line, the client cannot connect on Node 20.
		bare := strings.Replace(script, "Client.WebSocket = require('ws');", "", 1)
		require.NotEqual(t, script, bare)
		assert.Equal(t, "error: Client.WebSocket is not a constructor", next(t, runNode(t, ctx, bare), "the error"))
	})
}
