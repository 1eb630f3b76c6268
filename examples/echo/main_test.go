package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald/internal/testpeers"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestStartupErrors: a usage error exits 2 with the usage line, and a port in use says what
// to do and exits 1.
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	bin := testpeers.BuildProgram(t, "./examples/echo")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-port", "8000"}, "flag provided but not defined: -port"},
		{[]string{"-interval", "0s"}, "echo: -interval must be positive, not 0s"},
		{[]string{"-max-length", "-1"}, "echo: -max-length must be 0 (the default limit) or more, not -1"},
		{[]string{"127.0.0.1:8000"}, `echo: unexpected argument "127.0.0.1:8000": everything is a flag`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Name: "echo " + strings.Join(tc.args, " "), Args: tc.args})
			assert.Equal(t, 2, p.Wait(t, 20*time.Second))
			assert.True(t, p.Stderr.Contains(tc.want), p.Stderr.String())
			assert.True(t, p.Stderr.Contains("usage: go run ./examples/echo"), p.Stderr.String())
			assert.Empty(t, p.Stdout.String())
		})
	}

	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		addr := ln.Addr().String()
		p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Name: "echo on a used port", Args: []string{"-addr", addr}})
		assert.Equal(t, 1, p.Wait(t, 20*time.Second))
		assert.True(t, p.Stderr.Contains("echo: -addr "+addr+": listen tcp "+addr+": bind: address already in use: another program (another demo?) listens there; stop it, or pass another -addr (port 0 picks a free one)"), p.Stderr.String())
	})
}
