package herald_test

// The official @hapi/nes client (internal/testpeers/nes-client.js) against a nes server
// configured like examples/nes. The same assertions run against the reference server (hapi +
// @hapi/nes), which proves that they describe the reference's behaviour, and against herald.

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
)

func TestPeerNesClientHapi(t *testing.T) {
	t.Parallel()
	testPeerNesClient(t, hapiNes)
}

func TestPeerNesClientHerald(t *testing.T) {
	t.Parallel()
	testPeerNesClient(t, heraldNes)
}

// nesClientScenarios are nes-client.js's scenarios run against a server with the default
// heartbeat; the heartbeat scenario runs alone, in a process of its own, against a server with
// nesFastHeartbeat.
var nesClientScenarios = []string{
	"connect", "request", "notfound", "auth", "large", "subscribe", "unsubscribe", "badsub",
	"broadcast", "message", "badauth", "reconnect", "disconnect",
}

// nesClientTimeout bounds each nes-client.js run (its scenarios bound themselves at 10 s).
const nesClientTimeout = 30 * time.Second

func testPeerNesClient(t *testing.T, impl nesImpl) {
	main := impl.start(t, nesDefaultHeartbeat)
	fast := impl.start(t, nesFastHeartbeat)

	// Both runs at once: each prints one line per scenario, then {"done": true}.
	mainRun := testpeers.Start(t, "nes-client.js", append([]string{main}, nesClientScenarios...)...)
	fastRun := testpeers.Start(t, "nes-client.js", fast, "heartbeat")
	results := map[string]map[string]any{}
	collect := func(p *testpeers.Proc) {
		deadline := time.Now().Add(nesClientTimeout)
		for {
			line := p.Line(t, time.Until(deadline))
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m), "nes-client.js printed %q", line)
			if m["done"] == true {
				return
			}
			name, _ := m["scenario"].(string)
			results[name] = m
		}
	}
	collect(mainRun)
	collect(fastRun)

	for _, name := range append(nesClientScenarios, "heartbeat") {
		t.Run(name, func(t *testing.T) {
			got, ok := results[name]
			require.True(t, ok, "nes-client.js reported nothing for %s", name)
			if got["error"] != nil {
				b, _ := json.Marshal(got)
				t.Fatalf("%s failed in the client: %s", name, b)
			}
			check, ok := nesClientChecks[name]
			require.True(t, ok, "no checks for %s", name)
			check(t, got)
		})
	}
}

// nesClientChecks check what nes-client.js observed, scenario by scenario. The expected values
// are the reference's (see hapi-nes-server.js and @hapi/nes's lib/socket.js).
var nesClientChecks = map[string]func(t *testing.T, got map[string]any){
	"connect": func(t *testing.T, got map[string]any) {
		assert.NotEmpty(t, got["id"], "client.id after connect")
		assert.IsType(t, "", got["id"])
		assert.EqualValues(t, 1, got["connects"], "onConnect calls")
		nesJSONEq(t, `[]`, got["subscriptions"])
	},

	"request": func(t *testing.T, got map[string]any) {
		const world = `{"payload": "world!", "statusCode": 200}`
		nesJSONEq(t, world, got["byId"], "request('hello'): by route id")
		nesJSONEq(t, world, got["byPath"], "request('/h')")
		nesJSONEq(t, world, got["explicit"], "request({method: 'GET', path: '/h'})")
		nesJSONEq(t, `{"value": {"payload": {"echo": {"hi": "there"}}}}`, got["message"])
	},

	"notfound": func(t *testing.T, got map[string]any) {
		// A route id that names no route: a Boom error thrown by nes itself, so its payload
		// has no statusCode.
		nesJSONEq(t, `{"error": {"message": "Not Found", "type": "server", "isNes": true, "statusCode": 404,
			"data": {"error": "Not Found", "message": "Not Found"}}}`, got["routeId"], "unknown route id")
		// A path no route serves: the application's 404 (hapi's Boom body includes statusCode).
		nesJSONEq(t, `{"error": {"message": "Not Found", "type": "server", "isNes": true, "statusCode": 404,
			"data": {"statusCode": 404, "error": "Not Found", "message": "Not Found"}}}`, got["path"], "unknown path")
		nesJSONEq(t, `{"error": {"message": "Cannot use route id with wildcard method route config", "type": "server",
			"isNes": true, "statusCode": 400, "data": {"error": "Bad Request",
			"message": "Cannot use route id with wildcard method route config"}}}`, got["wildcardId"], "route id of a wildcard route")
		nesJSONEq(t, `{"error": {"message": "Not Found", "type": "server", "isNes": true, "statusCode": 404,
			"data": {"error": "Not Found", "message": "Not Found"}}}`, got["authEndpoint"], "the auth endpoint's path")
	},

	"auth": func(t *testing.T, got map[string]any) {
		const missing = `{"error": {"message": "Missing authentication", "type": "server", "isNes": true, "statusCode": 401,
			"data": {"statusCode": 401, "error": "Unauthorized", "message": "Missing authentication"}}}`
		nesJSONEq(t, missing, got["unauthenticated"], "/auth/h without credentials")
		nesJSONEq(t, missing, got["unauthenticatedById"], "authhello without credentials")
		nesJSONEq(t, `{"error": {"message": "Cannot include an Authorization header", "type": "server", "isNes": true,
			"statusCode": 400, "data": {"error": "Bad Request", "message": "Cannot include an Authorization header"}}}`,
			got["withHeader"], "a request carrying an AuthoriZation header")
		const hello = `{"value": {"payload": "Hello John Doe", "statusCode": 200}}`
		nesJSONEq(t, hello, got["authenticated"], "/auth/h as john")
		nesJSONEq(t, hello, got["authenticatedById"], "authhello as john")
		nesJSONEq(t, `{"value": true}`, got["reauth"], "reauthenticate")
		nesJSONEq(t, hello, got["afterReauth"], "/auth/h after reauthenticate")
	},

	"large": func(t *testing.T, got map[string]any) {
		assert.Equal(t, true, got["equal"], "1 MiB of JSON through /echo comes back equal")
		assert.Equal(t, got["sentBytes"], got["gotBytes"])
		assert.Greater(t, got["sentBytes"], float64(1<<20))
		assert.EqualValues(t, 200, got["statusCode"])
	},

	"subscribe": func(t *testing.T, got map[string]any) {
		nesJSONEq(t, `{"john": ["/item/5"], "anon": ["/item/5", "/items"]}`, got["subscriptions"])
		nesJSONEq(t, `{"payload": {"ok": true}, "statusCode": 200}`, got["published"], "the reply to /publish")
		// /item/6 reaches nobody; {n: 3, updater: 'john'} is filtered out for john only.
		nesJSONEq(t, `[{"message": {"n": 1}, "flags": {}}, {"message": {"n": 5}, "flags": {}}]`, got["john"], "john on /item/5")
		nesJSONEq(t, `[{"message": {"n": 1}, "flags": {}}, {"message": {"n": 3, "updater": "john"}, "flags": {}},
			{"message": {"n": 5}, "flags": {}}]`, got["anon"], "anonymous on /item/5")
		nesJSONEq(t, `[{"message": {"n": 4}, "flags": {}}]`, got["anonItems"], "anonymous on /items")
	},

	"unsubscribe": func(t *testing.T, got map[string]any) {
		assert.Nil(t, got["unsub"].(map[string]any)["error"], "unsubscribe('/item/7')")
		assert.Nil(t, got["unknown"].(map[string]any)["error"], "unsubscribe of a path never subscribed")
		nesJSONEq(t, `["/item/8"]`, got["subscriptions"])
		nesJSONEq(t, `[{"message": {"n": 1}, "flags": {}}]`, got["seven"], "/item/7: nothing after unsubscribe")
		nesJSONEq(t, `[{"message": {"n": 3}, "flags": {}}]`, got["eight"])
	},

	"badsub": func(t *testing.T, got map[string]any) {
		nesJSONEq(t, `{"error": {"message": "Subscription not found", "type": "server", "isNes": true, "statusCode": 404,
			"data": {"error": "Not Found", "message": "Subscription not found"}}}`, got["notFound"])
		nesJSONEq(t, `{"error": {"message": "Subscription path cannot contain query", "type": "server", "isNes": true,
			"statusCode": 400, "data": {"error": "Bad Request", "message": "Subscription path cannot contain query"}}}`, got["query"])
		nesJSONEq(t, `{"error": {"message": "Invalid path", "type": "user", "isNes": true}}`, got["invalid"])
		nesJSONEq(t, `[]`, got["subscriptions"], "failed subscriptions are forgotten")
	},

	"broadcast": func(t *testing.T, got map[string]any) {
		nesJSONEq(t, `{"payload": {"ok": true}, "statusCode": 200}`, got["res"])
		nesJSONEq(t, `[{"hello": "all"}]`, got["a"], "onUpdate of another client")
		nesJSONEq(t, `[{"hello": "all"}]`, got["b"], "onUpdate of the client that asked")
	},

	"message": func(t *testing.T, got map[string]any) {
		nesJSONEq(t, `{"value": {"payload": {"echo": {"a": 1, "b": [true, null, "x"]}}}}`, got["object"])
		nesJSONEq(t, `{"value": {"payload": {"echo": "hi"}}}`, got["string"])
		nesJSONEq(t, `{"value": {"payload": {"echo": 42}}}`, got["number"])
	},

	"badauth": func(t *testing.T, got map[string]any) {
		// The error message is @hapi/basic's.
		nesJSONEq(t, `{"error": {"message": "Bad username or password", "type": "server", "isNes": true, "statusCode": 401,
			"data": {"error": "Unauthorized", "message": "Bad username or password"}}}`, got["connect"])
		assert.EqualValues(t, 1, got["socketsOpened"], "a failed hello is final: no reconnection")
		assert.EqualValues(t, 0, got["connects"])
		assert.Nil(t, got["id"])
		disconnects := got["disconnects"].([]any)
		if assert.Len(t, disconnects, 1) {
			d := disconnects[0].(map[string]any)
			assert.Equal(t, false, d["willReconnect"])
			assert.Equal(t, false, d["log"].(map[string]any)["wasRequested"], "closed by the client itself, not by disconnect()")
		}
	},

	"reconnect": func(t *testing.T, got map[string]any) {
		nesJSONEq(t, `{"value": {"payload": {"ok": true}, "statusCode": 200}}`, got["drop"], "the reply to /drop arrives before the close")
		assert.Equal(t, true, got["reconnected"])
		assert.EqualValues(t, 2, got["connects"], "onConnect: the first connection and one reconnection")
		disconnects := got["disconnects"].([]any)
		if assert.Len(t, disconnects, 1) {
			d := disconnects[0].(map[string]any)
			log := d["log"].(map[string]any)
			assert.Equal(t, true, d["willReconnect"])
			assert.Equal(t, false, log["wasRequested"])
			assert.Equal(t, true, log["wasClean"], "the server closes with a close frame")
			assert.Contains(t, []any{float64(1000), float64(1005)}, log["code"], "close code")
		}
		assert.Equal(t, true, got["idChanged"], "a new socket id")
		nesJSONEq(t, `["/item/42"]`, got["subscriptions"])
		// The hello of the reconnection resubscribed and resent the credentials: the first
		// publication arrives, the second (updater john) is filtered out.
		nesJSONEq(t, `[{"message": {"after": "reconnect"}, "flags": {}}]`, got["got"])
		nesJSONEq(t, `{"value": {"payload": "Hello John Doe", "statusCode": 200}}`, got["afterReconnect"])
	},

	"disconnect": func(t *testing.T, got map[string]any) {
		assert.EqualValues(t, 1, got["connects"])
		assert.Nil(t, got["id"])
		disconnects := got["disconnects"].([]any)
		if assert.Len(t, disconnects, 1, "onDisconnect once, no reconnection") {
			d := disconnects[0].(map[string]any)
			log := d["log"].(map[string]any)
			assert.Equal(t, false, d["willReconnect"])
			assert.Equal(t, true, log["wasRequested"])
			assert.Equal(t, true, log["wasClean"])
			// The client closes without a code; the reference echoes an empty close frame.
			assert.Contains(t, []any{float64(1000), float64(1005)}, log["code"], "close code")
		}
	},

	"heartbeat": func(t *testing.T, got map[string]any) {
		// 4.5 s at a 1 s interval is four pings; a loaded machine may skip one.
		assert.GreaterOrEqual(t, got["pings"], float64(3), "server pings received")
		assert.EqualValues(t, 1, got["connects"])
		nesJSONEq(t, `[]`, got["disconnects"], "onDisconnect never fires")
		assert.EqualValues(t, 0, got["heartbeatTimeouts"])
		nesJSONEq(t, `[]`, got["errors"])
		nesJSONEq(t, `{"value": {"payload": "world!", "statusCode": 200}}`, got["request"], "still usable")
	},
}

// nesJSONEq asserts that got, encoded as JSON, equals the JSON text want.
func nesJSONEq(t *testing.T, want string, got any, msgAndArgs ...any) bool {
	t.Helper()
	b, err := json.Marshal(got)
	if !assert.NoError(t, err) {
		return false
	}
	return assert.JSONEq(t, want, string(b), msgAndArgs...)
}
