package browser_test

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
)

// TestClient runs browser/client.js in Chromium (internal/testpeers/browser-nes-client.js)
// against a herald nes server: over HeraldSocket's default transports (WebSocket here), and
// over 'sse' and 'poll' alone. The script runs the cases in the page and reports what it saw;
// the checks are below, one subtest per case.
func TestClient(t *testing.T) {
	testpeers.Node(t)
	chromium := testpeers.Chromium(t)
	for _, transport := range []string{"websocket", "sse", "poll"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			h := newClientHarness(t)
			ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
			defer cancel()
			out := testpeers.Run(ctx, t, "browser-nes-client.js", chromium, h.srv.HTTPURL, h.proxyURL, h.ctl.URL, transport)
			obs := parseCases(t, out)
			for _, c := range clientChecks {
				checkCase(t, obs, c.name, transport, c.check)
			}
		})
	}
}

// TestClientThroughProxies runs browser/client.js in Chromium through real proxies that block
// WebSocket, with the default transports in their order (each but the last given 1.5 s, as in
// TestPeerBrowserHeraldSocket), so that the client has to fall back by itself: Debian's nginx
// in front of the server, streaming (the client ends on the event stream) and buffering every
// response (on long-polling), and Debian's squid as Chromium's proxy (it refuses CONNECT: the
// event stream). Some of TestClient's cases run there, with its checks (requests, direct auth,
// subscribe and publish, the server dropping the socket, a restart), and burst: a numbered
// burst whose way down (the stream, the long-poll) is cut twice must arrive whole, in order,
// once, without a disconnection. The proxies reach the server through the harness's TCP proxy,
// which makes the cuts.
func TestClientThroughProxies(t *testing.T) {
	testpeers.Node(t)
	chromium := testpeers.Chromium(t)
	for _, tc := range []struct {
		name, want string // want: the transport the client must end on
		// front starts the proxy in front of h and returns the page's origin, and Chromium's
		// proxy ("" for none).
		front func(t *testing.T, h *clientHarness) (page, browserProxy string)
	}{
		{name: "nginx/streaming", want: "sse", front: func(t *testing.T, h *clientHarness) (string, string) {
			return testpeers.StartNginx(t, h.proxyURL, false), ""
		}},
		{name: "nginx/buffering", want: "poll", front: func(t *testing.T, h *clientHarness) (string, string) {
			return testpeers.StartNginx(t, h.proxyURL, true), ""
		}},
		{name: "squid", want: "sse", front: func(t *testing.T, h *clientHarness) (string, string) {
			return h.proxyURL, testpeers.StartSquid(t)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newClientHarness(t)
			page, browserProxy := tc.front(t, h)
			checks := map[string]func(*testing.T, string, json.RawMessage){"burst": checkBurst}
			for _, c := range clientChecks {
				checks[c.name] = c.check
			}
			args := []string{chromium, page, page, h.ctl.URL, "auto"}
			if browserProxy != "" {
				args = append(args, "--proxy="+browserProxy)
			}
			names := []string{"connect", "auth", "subscribe", "drop", "restart", "burst"}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
			defer cancel()
			start := time.Now()
			obs := parseCases(t, testpeers.Run(ctx, t, "browser-nes-client.js", append(args, names...)...))
			t.Logf("the script took %v", time.Since(start).Round(time.Millisecond))
			for _, name := range names {
				checkCase(t, obs, name, tc.want, checks[name])
			}
		})
	}
}

// checkCase runs check, in a subtest, on the script's report of the case name, which must
// have succeeded in the page.
func checkCase(t *testing.T, obs map[string]json.RawMessage, name, transport string, check func(*testing.T, string, json.RawMessage)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		raw, ok := obs[name]
		require.True(t, ok, "the script reported no case %q", name)
		var head struct {
			Error string  `json:"error"`
			MS    float64 `json:"ms"`
		}
		require.NoError(t, json.Unmarshal(raw, &head))
		require.Empty(t, head.Error, "case %q failed in the page", name)
		t.Logf("%s: %.0f ms", name, head.MS)
		check(t, transport, raw)
	})
}

// checkBurst checks the burst case (fallback transports only): the session outlived the
// cuts, and every publication arrived once, in order.
func checkBurst(t *testing.T, transport string, raw json.RawMessage) {
	o := decodeCase[struct {
		Cut         int               `json:"cut"`
		Arrived     pageOutcome       `json:"arrived"`
		Transport   string            `json:"transport"`
		Got         []int             `json:"got"`
		Disconnects []disconnectEvent `json:"disconnects"`
		Connects    int               `json:"connects"`
		Errors      []nesErr          `json:"errors"`
	}](t, raw)
	want := make([]int, 150)
	for i := range want {
		want[i] = i + 1
	}
	assert.Equal(t, transport, o.Transport)
	assert.Positive(t, o.Cut, "connections were cut")
	t.Logf("%d connections cut", o.Cut)
	assert.Empty(t, o.Disconnects, "the session outlived the cuts")
	assert.Equal(t, 1, o.Connects)
	assert.Empty(t, o.Errors)
	assert.True(t, o.Arrived.OK, "the barrier after the burst arrived: %+v", o.Arrived.Error)
	assert.Equal(t, want, o.Got, "every publication once, in order")
}

// parseCases reads the script's lines: {"case": name, ...} each, then {"done": true}.
func parseCases(t *testing.T, out string) map[string]json.RawMessage {
	t.Helper()
	obs := map[string]json.RawMessage{}
	done := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			Case string `json:"case"`
			Done bool   `json:"done"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "line %q", sc.Text())
		if line.Done {
			done = true
			continue
		}
		obs[line.Case] = append(json.RawMessage(nil), sc.Bytes()...)
	}
	require.True(t, done, "the script stopped before its last case:\n%s", out)
	return obs
}

// What the page reports.

// nesErr is an error as the page saw it: @hapi/nes's shape.
type nesErr struct {
	Message    string          `json:"message"`
	Type       string          `json:"type"`
	IsNes      bool            `json:"isNes"`
	StatusCode int             `json:"statusCode"`
	Data       json.RawMessage `json:"data"`
	Headers    map[string]any  `json:"headers"`
	Path       string          `json:"path"`
	IsError    bool            `json:"isError"`
}

// pageOutcome is a promise's: a value, or an error.
type pageOutcome struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error *nesErr         `json:"error"`
}

type pageReply struct {
	Payload    json.RawMessage `json:"payload"`
	StatusCode int             `json:"statusCode"`
	Headers    map[string]any  `json:"headers"`
}

// publication is one call of a subscription handler.
type publication struct {
	HasMessage bool            `json:"hasMessage"`
	Message    json.RawMessage `json:"message"`
	Flags      struct {
		Revoked bool    `json:"revoked"`
		Error   *nesErr `json:"error"`
	} `json:"flags"`
}

type disconnectEvent struct {
	WillReconnect bool `json:"willReconnect"`
	Log           struct {
		Code          *int    `json:"code"`
		Explanation   string  `json:"explanation"`
		Reason        string  `json:"reason"`
		WasClean      bool    `json:"wasClean"`
		WillReconnect bool    `json:"willReconnect"`
		WasRequested  bool    `json:"wasRequested"`
		Error         *nesErr `json:"error"`
	} `json:"log"`
}

type reconnectEvent struct {
	Attempt int     `json:"attempt"`
	Delay   float64 `json:"delay"`
	Error   *nesErr `json:"error"`
}

// pageSucceeded returns the value of an outcome that must have succeeded.
func pageSucceeded[T any](t *testing.T, o pageOutcome, what string) T {
	t.Helper()
	require.True(t, o.OK, "%s failed: %+v", what, o.Error)
	var v T
	if len(o.Value) > 0 {
		require.NoError(t, json.Unmarshal(o.Value, &v), "%s: %s", what, o.Value)
	}
	return v
}

// pageFailed returns the error of an outcome that must have failed, after checking that it is an
// Error of @hapi/nes's shape with the type given.
func pageFailed(t *testing.T, o pageOutcome, what, typ string) *nesErr {
	t.Helper()
	require.False(t, o.OK, "%s succeeded: %s", what, o.Value)
	require.NotNil(t, o.Error, what)
	assert.True(t, o.Error.IsError, "%s: not an Error", what)
	assert.True(t, o.Error.IsNes, "%s: isNes", what)
	assert.Equal(t, typ, o.Error.Type, "%s: type (%q)", what, o.Error.Message)
	return o.Error
}

func decodeCase[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(raw, &v))
	return v
}

func jsonEq(t *testing.T, want string, got json.RawMessage, msgAndArgs ...any) {
	t.Helper()
	if len(got) == 0 {
		got = json.RawMessage("null")
	}
	assert.JSONEq(t, want, string(got), msgAndArgs...)
}

// clientChecks check each case the script reports, in its order.
var clientChecks = []struct {
	name  string
	check func(t *testing.T, transport string, raw json.RawMessage)
}{
	{"connect", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Exported   map[string]string `json:"exported"`
			Before     map[string]any    `json:"before"`
			ID         string            `json:"id"`
			Transport  string            `json:"transport"`
			Transports []string          `json:"transports"`
			Connects   int               `json:"connects"`
			Hello      pageOutcome       `json:"hello"`
			Path       pageOutcome       `json:"path"`
			Echo       pageOutcome       `json:"echo"`
			Again      pageOutcome       `json:"again"`
			After      struct {
				ID          *string           `json:"id"`
				Transport   *string           `json:"transport"`
				Disconnects []disconnectEvent `json:"disconnects"`
			} `json:"after"`
			AfterRequest pageOutcome `json:"afterRequest"`
		}](t, raw)
		assert.Equal(t, map[string]string{"Client": "function", "HeraldSocket": "function"}, o.Exported)
		assert.Equal(t, map[string]any{"id": nil, "transport": nil}, o.Before)
		assert.NotEmpty(t, o.ID, "client.id after connect")
		assert.Equal(t, transport, o.Transport)
		assert.Equal(t, []string{transport}, o.Transports, "onTransport")
		assert.Equal(t, 1, o.Connects)

		hello := pageSucceeded[pageReply](t, o.Hello, "request('hello')")
		jsonEq(t, `"world!"`, hello.Payload)
		assert.Equal(t, 200, hello.StatusCode)
		assert.Equal(t, map[string]any{"x-herald-test": "yes"}, hello.Headers, "the headers the server lets through")
		path := pageSucceeded[pageReply](t, o.Path, "request('/h')")
		jsonEq(t, `"world!"`, path.Payload)
		echo := pageSucceeded[pageReply](t, o.Echo, "POST /echo")
		jsonEq(t, `{"a":1,"s":"héllo 🎉"}`, echo.Payload)

		e := pageFailed(t, o.Again, "a second connect()", "user")
		assert.Equal(t, "Already connected", e.Message)

		assert.Nil(t, o.After.ID, "id after disconnect")
		assert.Nil(t, o.After.Transport, "transport after disconnect")
		require.Len(t, o.After.Disconnects, 1)
		d := o.After.Disconnects[0]
		assert.False(t, d.WillReconnect)
		assert.True(t, d.Log.WasRequested)
		e = pageFailed(t, o.AfterRequest, "a request after disconnect", "disconnect")
		assert.Equal(t, "Failed to send message - server disconnected", e.Message)
	}},

	{"native", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Transport string      `json:"transport"`
			Hello     pageOutcome `json:"hello"`
		}](t, raw)
		assert.Equal(t, "websocket", o.Transport)
		jsonEq(t, `"world!"`, pageSucceeded[pageReply](t, o.Hello, "request('hello')").Payload)
	}},

	{"errors", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[map[string]json.RawMessage](t, raw)
		get := func(name string) pageOutcome { return decodeCase[pageOutcome](t, o[name]) }

		e := pageFailed(t, get("beforeConnect"), "a request before connect", "disconnect")
		assert.Equal(t, "Failed to send message - server disconnected", e.Message)
		pageFailed(t, get("messageBeforeConnect"), "a message before connect", "disconnect")

		// nes's own errors carry no payload.statusCode; the route's (a Boom body) does.
		e = pageFailed(t, get("unknownRoute"), "an unknown route id", "server")
		assert.Equal(t, 404, e.StatusCode)
		assert.Equal(t, "Not Found", e.Message)
		jsonEq(t, `{"error":"Not Found","message":"Not Found"}`, e.Data)
		e = pageFailed(t, get("unknownPath"), "an unknown path", "server")
		assert.Equal(t, 404, e.StatusCode)
		assert.Equal(t, "Not Found", e.Message)
		jsonEq(t, `{"statusCode":404,"error":"Not Found","message":"Not Found"}`, e.Data)
		e = pageFailed(t, get("missing"), "GET /missing", "server")
		assert.Equal(t, 404, e.StatusCode)
		assert.Equal(t, "No such thing", e.Message)
		jsonEq(t, `{"statusCode":404,"error":"Not Found","message":"No such thing"}`, e.Data)
		assert.Equal(t, map[string]any{"x-herald-test": "yes"}, e.Headers)
		e = pageFailed(t, get("boom"), "GET /boom", "server")
		assert.Equal(t, 500, e.StatusCode)
		assert.Equal(t, "An internal server error occurred", e.Message)
		e = pageFailed(t, get("authHeader"), "a request with an Authorization header", "server")
		assert.Equal(t, 400, e.StatusCode)
		assert.Equal(t, "Cannot include an Authorization header", e.Message)
		e = pageFailed(t, get("timeout"), "a request past the timeout", "timeout")
		assert.Equal(t, "Request timed out", e.Message)
		e = pageFailed(t, get("invalidPath"), "subscribe('item')", "user")
		assert.Equal(t, "Invalid path", e.Message)
		pageFailed(t, get("invalidHandler"), "subscribe without a handler", "user")
		e = pageFailed(t, get("unknownSub"), "subscribe('/nope')", "server")
		assert.Equal(t, 404, e.StatusCode)
		assert.Equal(t, "/nope", e.Path)
		assert.Equal(t, "Subscription not found", e.Message)
		jsonEq(t, `[]`, o["subscriptions"], "a refused path is not kept")
		e = pageFailed(t, get("again"), "connect() while connected", "user")
		assert.Equal(t, "Already connected", e.Message)
		pageSucceeded[pageReply](t, get("stillWorks"), "a request after the errors")
	}},

	{"message", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct{ Obj, Str, None pageOutcome }](t, raw)
		jsonEq(t, `{"payload":{"echo":{"a":1}}}`, pageSucceeded[json.RawMessage](t, o.Obj, "message({a: 1})"))
		jsonEq(t, `{"payload":{"echo":"hi"}}`, pageSucceeded[json.RawMessage](t, o.Str, "message('hi')"))
		jsonEq(t, `{"payload":{}}`, pageSucceeded[json.RawMessage](t, o.None, "message()"))
	}},

	{"update", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Updates []json.RawMessage `json:"updates"`
		}](t, raw)
		require.Len(t, o.Updates, 1)
		jsonEq(t, `{"hi":1}`, o.Updates[0])
	}},

	{"subscribe", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Sub, Sub2, SubSame pageOutcome
			Subscriptions      []string      `json:"subscriptions"`
			Server             int           `json:"server"`
			H                  []publication `json:"h"`
			H2                 []publication `json:"h2"`
			UnsubOne           pageOutcome   `json:"unsubOne"`
			ServerAfterOne     int           `json:"serverAfterOne"`
			AfterOne           struct{ H, H2 int }
			UnsubAll           pageOutcome `json:"unsubAll"`
			ServerAfterAll     int         `json:"serverAfterAll"`
			AfterAll           struct{ H, H2 int }
			SubscriptionsAfter []string    `json:"subscriptionsAfter"`
			UnsubUnknown       pageOutcome `json:"unsubUnknown"`
		}](t, raw)
		for name, oc := range map[string]pageOutcome{"subscribe": o.Sub, "a second handler": o.Sub2, "the same handler again": o.SubSame} {
			pageSucceeded[any](t, oc, name)
		}
		assert.Equal(t, []string{"/item/5", "/item/6"}, o.Subscriptions)
		assert.Equal(t, 1, o.Server, "the server's subscribers of /item/5")
		// n 2 was john's own update: the subscription's filter keeps it from john's socket.
		for name, got := range map[string][]publication{"first handler": o.H, "second handler": o.H2} {
			require.Len(t, got, 2, name)
			jsonEq(t, `{"n":1}`, got[0].Message, name)
			jsonEq(t, `{"n":3}`, got[1].Message, name)
			for _, p := range got {
				assert.False(t, p.Flags.Revoked, name)
			}
		}
		pageSucceeded[any](t, o.UnsubOne, "unsubscribe one handler")
		assert.Equal(t, 1, o.ServerAfterOne, "one handler left: still subscribed on the server")
		assert.Equal(t, 3, o.AfterOne.H, "the remaining handler")
		assert.Equal(t, 2, o.AfterOne.H2, "the removed handler")
		pageSucceeded[any](t, o.UnsubAll, "unsubscribe the path")
		assert.Equal(t, 0, o.ServerAfterAll, "unsubscribed on the server")
		assert.Equal(t, 3, o.AfterAll.H)
		assert.Equal(t, []string{"/item/6"}, o.SubscriptionsAfter)
		pageSucceeded[any](t, o.UnsubUnknown, "unsubscribe a path never subscribed")
	}},

	{"revoke", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			H             []publication `json:"h"`
			H2            []publication `json:"h2"`
			Subscriptions []string      `json:"subscriptions"`
			Server        int           `json:"server"`
			Still         pageOutcome   `json:"still"`
		}](t, raw)
		require.Len(t, o.H, 1)
		assert.True(t, o.H[0].Flags.Revoked)
		jsonEq(t, `{"bye":true}`, o.H[0].Message)
		// Without a message the handler still hears that its subscription ended (@hapi/nes
		// would not call it).
		require.Len(t, o.H2, 1)
		assert.True(t, o.H2[0].Flags.Revoked)
		assert.False(t, o.H2[0].HasMessage)
		assert.Empty(t, o.Subscriptions)
		assert.Equal(t, 0, o.Server)
		pageSucceeded[pageReply](t, o.Still, "a request after the revocations")
	}},

	{"auth", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Bad      pageOutcome `json:"bad"`
			AfterBad struct {
				Reconnects, Connects, Disconnects int
				ID                                *string
			} `json:"afterBad"`
			Good          pageOutcome `json:"good"`
			Authhello     pageOutcome `json:"authhello"`
			Reauth        pageOutcome `json:"reauth"`
			Override      bool        `json:"override"`
			AnonAuthhello pageOutcome `json:"anonAuthhello"`
			OverrideIdle  bool        `json:"overrideIdle"`
		}](t, raw)
		e := pageFailed(t, o.Bad, "connect with a wrong password", "server")
		assert.Equal(t, 401, e.StatusCode)
		assert.Equal(t, "Bad username or password", e.Message)
		assert.Equal(t, 0, o.AfterBad.Reconnects, "a refused hello is final: no reconnection")
		assert.Equal(t, 0, o.AfterBad.Connects)
		assert.Nil(t, o.AfterBad.ID)
		pageSucceeded[any](t, o.Good, "connect with john's credentials")
		jsonEq(t, `"Hello John Doe"`, pageSucceeded[pageReply](t, o.Authhello, "request('authhello')").Payload)
		assert.True(t, pageSucceeded[bool](t, o.Reauth, "reauthenticate"))
		assert.True(t, o.Override, "overrideReconnectionAuth while connected")
		e = pageFailed(t, o.AnonAuthhello, "authhello without credentials", "server")
		assert.Equal(t, 401, e.StatusCode)
		assert.False(t, o.OverrideIdle, "overrideReconnectionAuth before connect")
	}},

	{"drop", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			FirstID     string            `json:"firstId"`
			SecondID    string            `json:"secondId"`
			Transport   string            `json:"transport"`
			Disconnects []disconnectEvent `json:"disconnects"`
			Connects    int               `json:"connects"`
			Got         []publication     `json:"got"`
		}](t, raw)
		require.Len(t, o.Disconnects, 1)
		assert.True(t, o.Disconnects[0].WillReconnect)
		assert.False(t, o.Disconnects[0].Log.WasRequested)
		assert.Equal(t, 2, o.Connects)
		assert.NotEqual(t, o.FirstID, o.SecondID, "a new socket")
		assert.Equal(t, transport, o.Transport)
		require.Len(t, o.Got, 1)
		jsonEq(t, `{"n":1}`, o.Got[0].Message, "the subscription delivers again")
	}},

	{"cut", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Slow        pageOutcome       `json:"slow"`
			Settled     float64           `json:"settled"`
			Disconnects []disconnectEvent `json:"disconnects"`
			Connects    int               `json:"connects"`
			Got         []publication     `json:"got"`
		}](t, raw)
		require.Len(t, o.Got, 1, "the subscription delivers after the cut")
		if transport != "websocket" {
			// The fallback session outlives its connections: HeraldSocket resumes it, the
			// client sees nothing, and the reply comes when the server sends it (2 s).
			pageSucceeded[pageReply](t, o.Slow, "the request pending at the cut")
			assert.Empty(t, o.Disconnects)
			assert.Equal(t, 1, o.Connects)
			return
		}
		e := pageFailed(t, o.Slow, "the request pending at the cut", "disconnect")
		assert.Equal(t, "Request failed - server disconnected", e.Message)
		assert.Less(t, o.Settled, 1000.0, "the pending request fails at once, not when the server would have answered (2 s)")
		require.Len(t, o.Disconnects, 1)
		assert.True(t, o.Disconnects[0].WillReconnect)
		require.NotNil(t, o.Disconnects[0].Log.Code)
		assert.Equal(t, 1006, *o.Disconnects[0].Log.Code)
		assert.Equal(t, 2, o.Connects)
	}},

	{"restart", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			FirstID       string            `json:"firstId"`
			SecondID      string            `json:"secondId"`
			Got           []publication     `json:"got"`
			Subscriptions []string          `json:"subscriptions"`
			Server        int               `json:"server"`
			Disconnects   []disconnectEvent `json:"disconnects"`
			Reconnects    []reconnectEvent  `json:"reconnects"`
		}](t, raw)
		require.Len(t, o.Disconnects, 1)
		assert.True(t, o.Disconnects[0].WillReconnect)
		require.NotEmpty(t, o.Reconnects)
		assert.Equal(t, 1, o.Reconnects[0].Attempt)
		assert.NotEqual(t, o.FirstID, o.SecondID)
		assert.Equal(t, []string{"/item/10"}, o.Subscriptions)
		assert.Equal(t, 1, o.Server, "resubscribed by the hello")
		require.Len(t, o.Got, 1)
		jsonEq(t, `{"n":1}`, o.Got[0].Message)
	}},

	{"backoff", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			PhaseA []reconnectEvent `json:"phaseA"`
			B1     []reconnectEvent `json:"b1"`
			PhaseC []reconnectEvent `json:"phaseC"`
			B2     []reconnectEvent `json:"b2"`
		}](t, raw)
		const delay, maxDelay = 20.0, 320.0
		capOf := func(n int) float64 { return math.Min(maxDelay, delay*math.Pow(2, float64(n))) }

		// Phase A: attempts 1..8 of one outage, the caps doubling from delay to maxDelay.
		require.Len(t, o.PhaseA, 8)
		var ratios []float64
		for i, r := range o.PhaseA {
			assert.Equal(t, i+1, r.Attempt)
			assert.GreaterOrEqual(t, r.Delay, 0.0)
			assert.LessOrEqual(t, r.Delay, capOf(i), "attempt %d: drawn in [0, %v]", r.Attempt, capOf(i))
			if i > 0 {
				assert.NotNil(t, r.Error, "attempt %d: the previous attempt's error", r.Attempt)
			}
			ratios = append(ratios, r.Delay/capOf(i))
		}
		t.Logf("phase A waits: %v", delays(o.PhaseA))
		// Jitter, not a fixed schedule: the waits spread over their range, also at the cap
		// (attempts 5 to 8 all have 320 ms), where @hapi/nes and jitter-before-cap clients
		// all wait the same.
		assert.Greater(t, spread(ratios), 0.2, "waits/caps %v", ratios)
		assert.Greater(t, spread(delays(o.PhaseA[4:])), 0.05*maxDelay, "waits at the cap %v", delays(o.PhaseA[4:]))

		// After a connection that stayed up past resetAfter, the first wait's cap is delay
		// again (without the reset it would be maxDelay: a wait within 20 ms twice in a row has
		// a chance of (20/320)² without it).
		for name, b := range map[string][]reconnectEvent{"b1": o.B1, "b2": o.B2} {
			require.Len(t, b, 1, name)
			assert.Equal(t, 1, b[0].Attempt, name)
			assert.LessOrEqual(t, b[0].Delay, delay, "%s: the backoff resets after a stable connection", name)
		}
		// Connections dropped at once do not reset it: the caps grow again (40, 80, 160, 320),
		// and each outage starts at attempt 1.
		require.Len(t, o.PhaseC, 4)
		for i, r := range o.PhaseC {
			assert.Equal(t, 1, r.Attempt, "each drop is an outage of its own")
			assert.LessOrEqual(t, r.Delay, capOf(i+1))
		}
		t.Logf("phase C waits: %v", delays(o.PhaseC))
		assert.Greater(t, slicesMax(delays(o.PhaseC)), delay, "without a stable connection the caps keep growing")
	}},

	{"retries", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Connects                int               `json:"connects"`
			LastOutage              []int             `json:"lastOutage"`
			Disconnects             []disconnectEvent `json:"disconnects"`
			ReconnectsAfterGivingUp int               `json:"reconnectsAfterGivingUp"`
			Again                   pageOutcome       `json:"again"`
			NoReconnect             struct {
				Disconnects []disconnectEvent `json:"disconnects"`
				Reconnects  int               `json:"reconnects"`
				Connects    int               `json:"connects"`
				Request     pageOutcome       `json:"request"`
			} `json:"noReconnect"`
		}](t, raw)
		assert.Equal(t, 4, o.Connects, "three outages of one attempt each, with retries: 2")
		assert.Equal(t, []int{1, 2}, o.LastOutage, "the server down: two attempts, then no more")
		assert.Equal(t, 2, o.ReconnectsAfterGivingUp)
		require.Len(t, o.Disconnects, 5, "four losses and giving up")
		for _, d := range o.Disconnects[:4] {
			assert.True(t, d.WillReconnect)
		}
		last := o.Disconnects[4]
		assert.False(t, last.WillReconnect)
		assert.False(t, last.Log.WasRequested)
		assert.NotNil(t, last.Log.Error, "giving up says why")
		pageSucceeded[any](t, o.Again, "connect() after giving up")

		require.Len(t, o.NoReconnect.Disconnects, 1)
		assert.False(t, o.NoReconnect.Disconnects[0].WillReconnect)
		assert.Equal(t, 0, o.NoReconnect.Reconnects)
		assert.Equal(t, 1, o.NoReconnect.Connects)
		pageFailed(t, o.NoReconnect.Request, "a request after the connection was lost", "disconnect")
	}},

	{"disconnect", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Slow                    pageOutcome       `json:"slow"`
			FailedAfter             float64           `json:"failedAfter"`
			ID                      *string           `json:"id"`
			Disconnects             []disconnectEvent `json:"disconnects"`
			Reconnects              int               `json:"reconnects"`
			Subscriptions           []string          `json:"subscriptions"`
			ServerWhileDisconnected int               `json:"serverWhileDisconnected"`
			Got                     []publication     `json:"got"`
		}](t, raw)
		e := pageFailed(t, o.Slow, "the request pending at disconnect()", "disconnect")
		assert.Equal(t, "Request failed - server disconnected", e.Message)
		assert.Less(t, o.FailedAfter, 2500.0)
		assert.Nil(t, o.ID)
		require.Len(t, o.Disconnects, 1)
		assert.False(t, o.Disconnects[0].WillReconnect)
		assert.True(t, o.Disconnects[0].Log.WasRequested)
		assert.Equal(t, 0, o.Reconnects)
		assert.Equal(t, []string{"/item/50"}, o.Subscriptions, "kept for the next connect()")
		assert.Equal(t, 0, o.ServerWhileDisconnected)
		require.Len(t, o.Got, 1, "the next connect()'s hello resubscribed")
	}},

	{"heartbeat", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			After             float64 `json:"after"`
			HeartbeatTimeouts []struct {
				WillReconnect bool `json:"willReconnect"`
			} `json:"heartbeatTimeouts"`
			Errors      []nesErr          `json:"errors"`
			Disconnects []disconnectEvent `json:"disconnects"`
			Got         []publication     `json:"got"`
			Transport   string            `json:"transport"`
		}](t, raw)
		require.Len(t, o.HeartbeatTimeouts, 1)
		assert.True(t, o.HeartbeatTimeouts[0].WillReconnect)
		// The server's heartbeat is 1000 + 800 ms; the last ping came about 1 s before the
		// freeze at most (later on a loaded machine).
		window := float64((clientHeartbeatInterval + clientHeartbeatTimeout) / time.Millisecond)
		assert.Greater(t, o.After, 300.0, "not at once")
		assert.Less(t, o.After, window+2500, "soon after the window")
		require.NotEmpty(t, o.Errors)
		assert.Equal(t, "Disconnecting due to heartbeat timeout", o.Errors[0].Message)
		assert.Equal(t, "timeout", o.Errors[0].Type)
		require.Len(t, o.Disconnects, 1)
		assert.True(t, o.Disconnects[0].WillReconnect)
		require.NotNil(t, o.Disconnects[0].Log.Error)
		assert.Equal(t, "timeout", o.Disconnects[0].Log.Error.Type)
		require.Len(t, o.Got, 1, "resubscribed after reconnecting")
		assert.Equal(t, transport, o.Transport)
	}},

	{"refuse", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			H1            []publication     `json:"h1"`
			H2            []publication     `json:"h2"`
			Subscriptions []string          `json:"subscriptions"`
			Server22      int               `json:"server22"`
			Disconnects   []disconnectEvent `json:"disconnects"`
			Connects      int               `json:"connects"`
		}](t, raw)
		require.Len(t, o.H2, 1, "the refused path's handler")
		p := o.H2[0]
		assert.True(t, p.Flags.Revoked)
		assert.False(t, p.HasMessage)
		require.NotNil(t, p.Flags.Error)
		assert.Equal(t, 403, p.Flags.Error.StatusCode)
		assert.Equal(t, "/item/22", p.Flags.Error.Path)
		assert.Equal(t, "Refused by the test", p.Flags.Error.Message)
		assert.Equal(t, []string{"/item/21"}, o.Subscriptions)
		assert.Equal(t, 0, o.Server22)
		require.Len(t, o.Disconnects, 1, "the refusal is not a disconnection of its own")
		assert.Equal(t, 2, o.Connects)
		require.Len(t, o.H1, 1, "the other path delivers")
		jsonEq(t, `{"n":1}`, o.H1[0].Message)
	}},

	{"queued", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			IdleSettledAtOnce      bool          `json:"idleSettledAtOnce"`
			IdleOutcome            pageOutcome   `json:"idleOutcome"`
			IdleSubscriptions      []string      `json:"idleSubscriptions"`
			SettledWhileDown       []bool        `json:"settledWhileDown"`
			SubscriptionsWhileDown []string      `json:"subscriptionsWhileDown"`
			S1                     pageOutcome   `json:"s1"`
			S2                     pageOutcome   `json:"s2"`
			Subscriptions          []string      `json:"subscriptions"`
			H1                     []publication `json:"h1"`
			H2                     []publication `json:"h2"`
			H0                     []publication `json:"h0"`
		}](t, raw)
		assert.True(t, o.IdleSettledAtOnce, "before connect(), subscribe() resolves at once")
		pageSucceeded[any](t, o.IdleOutcome, "subscribe before connect")
		assert.Equal(t, []string{"/item/30"}, o.IdleSubscriptions)
		assert.Equal(t, []bool{false, false}, o.SettledWhileDown, "while reconnecting, subscribe() waits for the hello")
		assert.Equal(t, []string{"/item/31", "/item/32"}, o.SubscriptionsWhileDown)
		pageSucceeded[any](t, o.S1, "the accepted path")
		e := pageFailed(t, o.S2, "the refused path", "server")
		assert.Equal(t, 403, e.StatusCode)
		assert.Equal(t, "/item/32", e.Path)
		assert.Equal(t, []string{"/item/31"}, o.Subscriptions)
		require.Len(t, o.H1, 1)
		assert.Empty(t, o.H2, "a handler whose subscribe() rejected hears nothing")
		require.Len(t, o.H0, 1, "the path subscribed before connect() delivers")
	}},

	{"chunked", func(t *testing.T, transport string, raw json.RawMessage) {
		type result struct {
			OK    bool    `json:"ok"`
			Equal bool    `json:"equal"`
			Error *nesErr `json:"error"`
		}
		o := decodeCase[struct {
			Transport        string            `json:"transport"`
			Big              result            `json:"big"`
			TooBig           result            `json:"tooBig"`
			SmallErrors      []nesErr          `json:"smallErrors"`
			SmallDisconnects []disconnectEvent `json:"smallDisconnects"`
			After            pageOutcome       `json:"after"`
		}](t, raw)
		assert.True(t, o.Big.OK && o.Big.Equal, "a 25,000-character echo: %+v", o.Big.Error)
		if transport != "websocket" {
			// Only WebSocket messages are chunked: over the fallback the bound is not reached.
			assert.True(t, o.TooBig.OK && o.TooBig.Equal, "%+v", o.TooBig.Error)
			return
		}
		require.False(t, o.TooBig.OK, "past maxMessageLength")
		assert.Equal(t, "disconnect", o.TooBig.Error.Type)
		require.NotEmpty(t, o.SmallErrors)
		assert.Equal(t, "protocol", o.SmallErrors[0].Type)
		assert.Contains(t, o.SmallErrors[0].Message, "maxMessageLength")
		require.Len(t, o.SmallDisconnects, 1)
		assert.True(t, o.SmallDisconnects[0].WillReconnect)
		pageSucceeded[pageReply](t, o.After, "a request after reconnecting")
	}},

	{"callbacks", func(t *testing.T, transport string, raw json.RawMessage) {
		o := decodeCase[struct {
			Errors []struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Cause   string `json:"cause"`
			} `json:"errors"`
			FromCallback []string    `json:"fromCallback"`
			Got          int         `json:"got"`
			Still        pageOutcome `json:"still"`
			Stopped      struct {
				Reconnects  int    `json:"reconnects"`
				Connects    int    `json:"connects"`
				Disconnects []bool `json:"disconnects"`
			} `json:"stopped"`
		}](t, raw)
		var causes []string
		for _, e := range o.Errors {
			assert.Equal(t, "user", e.Type, e.Message)
			causes = append(causes, e.Cause)
		}
		assert.ElementsMatch(t, []string{"boom in onConnect", "boom in handler", "async boom"}, causes)
		assert.Equal(t, []string{"world!"}, o.FromCallback, "a request made from onConnect")
		assert.Equal(t, 2, o.Got, "handlers go on after others threw, and after onError threw")
		pageSucceeded[pageReply](t, o.Still, "a request after all that")
		assert.Equal(t, 0, o.Stopped.Reconnects, "disconnect() from onDisconnect stops the reconnection")
		assert.Equal(t, 1, o.Stopped.Connects)
		assert.Equal(t, []bool{true, false}, o.Stopped.Disconnects, "lost, then stopped")
	}},
}

func delays(rs []reconnectEvent) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.Delay
	}
	return out
}

func spread(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slicesMax(v) - slicesMin(v)
}

func slicesMax(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

func slicesMin(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}
