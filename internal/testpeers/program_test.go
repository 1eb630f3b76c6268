package testpeers_test

// BuildProgram, StartProgram and CleanEnv, on examples/nes (which StartNes builds too).

import (
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
)

func TestCleanEnv(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://proxy.example:3128")
	t.Setenv("https_proxy", "http://proxy.example:3128")
	t.Setenv("All_Proxy", "socks5://proxy.example:1080")
	t.Setenv("NO_PROXY", "localhost")
	t.Setenv("HERALD_KEPT", "yes")
	env := testpeers.CleanEnv()
	assert.Contains(t, env, "HERALD_KEPT=yes")
	for _, kv := range env {
		assert.NotRegexp(t, `(?i)^(http|https|all|no)_proxy=`, kv)
	}
}

func TestProgram(t *testing.T) {
	t.Parallel()
	bin := testpeers.BuildProgram(t, "./examples/nes")
	assert.Equal(t, bin, testpeers.BuildProgram(t, "./examples/nes"), "built once")

	t.Run("server", func(t *testing.T) {
		t.Parallel()
		for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
			p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Name: "examples/nes", Args: []string{"-addr", "127.0.0.1:0"}})
			addr := p.Listening(t)
			res, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}).Get("http://" + addr + "/h")
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, 0, p.Stop(t, sig, 10*time.Second), "%v", sig)
			assert.Equal(t, 0, p.Stop(t, sig, 10*time.Second), "stopped again")
			assert.Equal(t, "listening on http://"+addr+"\n", p.Stdout.String())
		}
	})

	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Args: []string{"-auth", "nope"}, Env: testpeers.CleanEnv()})
		p.Stderr.WaitFor(t, "-auth must be direct, token or cookie")
		assert.Equal(t, 2, p.Wait(t, 10*time.Second), "a usage error")
		assert.Empty(t, p.Stdout.String())
		assert.Error(t, p.Err())
	})

	t.Run("killed", func(t *testing.T) {
		t.Parallel()
		p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Args: []string{"-addr", "127.0.0.1:0"}})
		assert.Len(t, p.Stdout.WaitLines(t, 1), 1)
		assert.Equal(t, -1, p.Stop(t, syscall.SIGKILL, 10*time.Second))
		<-p.Exited()
		assert.Error(t, p.Err())
	})
}
