package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
)

// TestPeerWSMaxLengthCompressed is the report of issue 10 against the program: with
// -max-length 1048576, Node's ws client with permessage-deflate sends random messages up to
// 1 MiB (compressed into frames a little larger than the messages) and gets each one back;
// one byte more is refused with 1009.
func TestPeerWSMaxLengthCompressed(t *testing.T) {
	testpeers.Node(t)
	bin := testpeers.BuildProgram(t, "./examples/echo")
	t.Parallel()
	const maxLength = 1 << 20
	addr := startEcho(t, bin, "-max-length", "1048576")
	type result struct {
		Error     string `json:"error"`
		CloseCode int    `json:"closeCode"`
		Results   []struct {
			OK bool `json:"ok"`
		} `json:"results"`
	}
	run := func(sizes ...int) result {
		var msgs []map[string]any
		for _, n := range sizes {
			msgs = append(msgs, map[string]any{"type": "binary", "size": n, "kind": "random"})
		}
		arg, _ := json.Marshal(map[string]any{"peer": "ws", "url": "ws://" + addr, "origin": "http://" + addr,
			"pmd": map[string]any{"threshold": 0}, "messages": msgs})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out := testpeers.Run(ctx, t, "deflate-client.js", string(arg))
		var r result
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		return r
	}
	r := run(1047552, maxLength-1, maxLength)
	assert.Empty(t, r.Error)
	assert.Equal(t, 1000, r.CloseCode, "a message within -max-length was refused")
	require.Len(t, r.Results, 3)
	for i, res := range r.Results {
		assert.True(t, res.OK, "echo %d differs", i)
	}
	r = run(maxLength + 1)
	assert.Equal(t, 1009, r.CloseCode, "error %q", r.Error)
	assert.Empty(t, r.Results)
}
