// Command nescli is a command-line nes client on herald's Go client (package client), the nes
// counterpart of wsclient: it makes one request, sends one custom message, or subscribes and
// prints the updates. Flags come before the URL.
//
//	go run ./examples/nescli [flags] URL request PATH|ID
//	go run ./examples/nescli [flags] URL message JSON
//	go run ./examples/nescli [flags] URL subscribe PATH...
//
// request sends -method (default GET) to a path ("/items/5") or a route id ("hello"), with
// -payload as its JSON payload (a JSON string reaches the application as its text, the way
// nes hands string payloads over); it prints the reply's payload as one line of JSON and exits 0
// for a 2xx status. message sends JSON as a custom message and prints the server's answer as
// one line of JSON (null when it answered nothing). Any other outcome exits 1, standard error
// naming the status code and the server's error message.
//
// subscribe prints each update of each PATH as one line, {"path":P,"message":M}, and a
// revocation as {"path":P,"revoked":true}, with "message" when the server sent one and "error"
// when the server refused the subscription on a reconnection. Once every path is subscribed
// (standard error says "subscribed to PATH" for each), it stays subscribed across
// reconnections until interrupted (SIGINT or SIGTERM: it closes and exits 0), until -count N
// lines have been printed (exit 0), until no subscription is left (exit 0 when the server
// revoked them, 1 when one was refused), or until the client gives up reconnecting (exit 1,
// after a refused hello). A path the server refuses at the start exits 1.
//
// Flags:
//
//	-H 'Name: value'   a header for direct authentication, sent in the hello (repeatable;
//	                   names are lower-cased, as nes sends them)
//	-token T           token authentication: the hello presents T
//	-proxy URL|direct  the proxy (http://, https://, socks5://, with user:password@);
//	                   default: the environment's HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY
//	-transport T       auto (default: WebSocket, then EventSource + POST, then long-polling,
//	                   whichever reaches the server), websocket, sse or poll; the transport
//	                   the connection ended up on is reported on standard error
//	-timeout D         bounds the connection (and each reconnection attempt) and each call:
//	                   the request, the message, each subscribe; default 10s
//	-method M          the request's method; default GET
//	-payload JSON      the request's payload
//	-count N           subscribe: exit after N lines; default 0, no limit
//
// Output lines are compact JSON, the server's values re-encoded without spaces. What the
// program reports (connected, disconnected and reconnecting, errors) goes to standard error;
// standard output holds the JSON lines only. Usage errors exit 2; -h prints the usage and
// exits 0.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/websocket"
)

const usage = "usage: nescli [-H 'Name: value']... [-token T] [-proxy URL|direct] [-transport auto|websocket|sse|poll] [-timeout D] [-method M] [-payload JSON] [-count N] URL (request PATH|ID | message JSON | subscribe PATH...)"

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is what the command line asks for.
type command struct {
	url     string
	name    string   // request, message or subscribe
	args    []string // the path or id, the message, or the paths
	opts    *client.Options
	timeout time.Duration
	method  string
	payload json.RawMessage
	count   int
}

// run is the program, with its arguments and streams; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	log := &reporter{w: stderr}
	cmd, ok := parse(args, log)
	switch {
	case cmd == nil && ok: // -h
		return 0
	case !ok:
		return 2
	}
	out := &printer{w: stdout}
	s := &session{cmd: cmd, log: log, out: out, connected: make(chan struct{}), gaveUp: make(chan struct{})}
	return s.run(ctx)
}

// parse reads the command line. It reports usage errors itself. A nil command with ok is -h
// (or -help), whose usage has been printed.
func parse(args []string, log *reporter) (*command, bool) {
	fs := flag.NewFlagSet("nescli", flag.ContinueOnError)
	fs.SetOutput(log.w)
	var headers listFlag
	fs.Var(&headers, "H", "header for direct authentication, 'Name: value', sent in the hello (repeatable)")
	token := fs.String("token", "", "token authentication: the token the hello presents")
	proxy := fs.String("proxy", "", "proxy URL (http://, https://, socks5://; \"direct\" for none); default: the environment")
	transport := fs.String("transport", "auto", "auto, websocket, sse or poll: what carries the connection")
	timeout := fs.Duration("timeout", 10*time.Second, "bounds the connection, each reconnection attempt and each call")
	method := fs.String("method", "GET", "request: the method")
	payload := fs.String("payload", "", "request: the JSON payload")
	count := fs.Int("count", 0, "subscribe: exit after this many updates (0: no limit)")
	fs.Usage = func() {
		fmt.Fprintln(log.w, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, errors.Is(err, flag.ErrHelp) // -h: the usage, and exit 0
	}
	bad := func(format string, a ...any) (*command, bool) {
		fmt.Fprintf(log.w, "nescli: "+format+"\n", a...)
		fmt.Fprintln(log.w, usage)
		return nil, false
	}
	for _, a := range fs.Args() {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && fs.Lookup(name) != nil {
			return bad("%s: flags go before the URL", a)
		}
	}
	if fs.NArg() < 2 {
		return bad("want a URL and a command")
	}
	if !strings.Contains(fs.Arg(0), "://") {
		return bad("%q is not a URL: want ws://HOST:PORT (or wss://, http://, https://), such as ws://%s", fs.Arg(0), fs.Arg(0))
	}
	cmd := &command{url: fs.Arg(0), name: fs.Arg(1), args: fs.Args()[2:], timeout: *timeout,
		method: strings.ToUpper(*method), count: *count}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch cmd.name {
	case "request":
		if len(cmd.args) != 1 {
			return bad("request takes one path or route id")
		}
		if *payload != "" {
			if !json.Valid([]byte(*payload)) {
				return bad("-payload is not valid JSON: %s", *payload)
			}
			cmd.payload = json.RawMessage(*payload)
		}
	case "message":
		if len(cmd.args) != 1 {
			return bad("message takes one JSON value")
		}
		if !json.Valid([]byte(cmd.args[0])) {
			return bad("the message is not valid JSON: %s", cmd.args[0])
		}
	case "subscribe":
		if len(cmd.args) == 0 {
			return bad("subscribe takes one path or more")
		}
		for _, p := range cmd.args {
			if !strings.HasPrefix(p, "/") {
				return bad("subscribe: %q is not a path (it must start with /)", p)
			}
		}
		slices.Sort(cmd.args)
		cmd.args = slices.Compact(cmd.args)
	default:
		return bad("unknown command %q: want request, message or subscribe", cmd.name)
	}
	if cmd.name != "request" && (set["method"] || set["payload"]) {
		return bad("-method and -payload are for request")
	}
	if cmd.name != "subscribe" && set["count"] {
		return bad("-count is for subscribe")
	}
	if cmd.count < 0 {
		return bad("-count must be 0 (no limit) or more, not %d", cmd.count)
	}
	if cmd.timeout <= 0 {
		return bad("-timeout must be positive, not %v", cmd.timeout)
	}

	opts := &client.Options{Timeout: cmd.timeout, ConnectTimeout: cmd.timeout, Dial: &websocket.DialOptions{}}
	switch {
	case *token != "" && len(headers) > 0:
		return bad("-token and -H are two kinds of authentication: give one")
	case *token != "":
		opts.Auth = &client.Auth{Token: *token}
	case len(headers) > 0:
		opts.Auth = &client.Auth{Headers: map[string]string{}}
		for _, h := range headers {
			name, value, ok := strings.Cut(h, ":")
			name = strings.ToLower(strings.TrimSpace(name))
			if !ok || name == "" {
				return bad("-H %q: want 'Name: value'", h)
			}
			value = strings.TrimSpace(value)
			if prev, ok := opts.Auth.Headers[name]; ok {
				value = prev + ", " + value
			}
			opts.Auth.Headers[name] = value
		}
	}
	switch *transport {
	case "auto":
	case client.TransportWebSocket, client.TransportSSE, client.TransportPoll:
		opts.Transports = []string{*transport}
	default:
		return bad("-transport %q: want auto, websocket, sse or poll", *transport)
	}
	switch *proxy {
	case "":
	case "direct":
		opts.Dial.Proxy = websocket.NoProxy
	default:
		opts.Dial.Proxy = websocket.ProxyURL(*proxy)
	}
	cmd.opts = opts
	return cmd, true
}

// session is one run of the client.
type session struct {
	cmd       *command
	log       *reporter
	out       *printer
	connected chan struct{} // closed once the first OnConnect has been reported
	gaveUp    chan struct{} // closed when the client stops reconnecting by itself
	once      sync.Once
}

func (s *session) run(ctx context.Context) int {
	opts := s.cmd.opts
	// A request or a message is one call: a lost connection fails it rather than wait for
	// another.
	opts.NoReconnect = s.cmd.name != "subscribe"
	opts.OnConnect = func(e client.ConnectEvent) {
		if e.Reconnect {
			s.log.printf("reconnected (socket %s, %s)", e.ID, e.Transport)
			return
		}
		s.log.printf("connected to %s (socket %s, %s)", s.cmd.url, e.ID, e.Transport)
		close(s.connected)
	}
	opts.OnDisconnect = func(e client.DisconnectEvent) {
		switch {
		case e.Requested:
		case e.WillReconnect:
			s.log.printf("disconnected: %s; reconnecting", describe(e.Err))
		default:
			s.log.printf("disconnected: %s", describe(e.Err))
			s.once.Do(func() { close(s.gaveUp) })
		}
	}
	opts.OnError = func(err error) { s.log.printf("%s", describe(err)) }
	opts.OnUpdate = func(m json.RawMessage) { s.log.printf("server push (no subscription): %s", m) }

	c, err := client.New(s.cmd.url, opts)
	if err != nil {
		s.log.printf("%s", describe(err))
		fmt.Fprintln(s.log.w, usage)
		return 2
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, s.cmd.timeout)
	err = c.Connect(cctx)
	cancel()
	if err != nil {
		s.log.printf("connect to %s: %s", s.cmd.url, describe(err))
		if errors.Is(err, syscall.ECONNREFUSED) {
			s.log.printf("nothing listens at %s: is the server running? (go run ./examples/nes starts one at ws://127.0.0.1:8000)", s.cmd.url)
		}
		return 1
	}
	// OnConnect was queued before Connect returned: report it before anything else.
	select {
	case <-s.connected:
	case <-ctx.Done():
	}

	switch s.cmd.name {
	case "request":
		return s.request(ctx, c)
	case "message":
		return s.message(ctx, c)
	}
	return s.subscribe(ctx, c)
}

func (s *session) request(ctx context.Context, c *client.Client) int {
	ctx, cancel := context.WithTimeout(ctx, s.cmd.timeout)
	defer cancel()
	req := &client.Request{Method: s.cmd.method, Path: s.cmd.args[0]}
	if s.cmd.payload != nil {
		req.Payload = s.cmd.payload
	}
	res, err := c.Do(ctx, req)
	if err != nil {
		s.log.printf("%s %s: %s", req.Method, req.Path, describe(err))
		return 1
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		s.log.printf("%s %s: status %d, not 2xx; payload: %s", req.Method, req.Path, res.StatusCode, res.Payload)
		return 1
	}
	return s.print(res.Payload)
}

func (s *session) message(ctx context.Context, c *client.Client) int {
	ctx, cancel := context.WithTimeout(ctx, s.cmd.timeout)
	defer cancel()
	answer, err := c.Message(ctx, json.RawMessage(s.cmd.args[0]))
	if err != nil {
		s.log.printf("message: %s", describe(err))
		return 1
	}
	return s.print(answer)
}

// print prints one JSON value as a line (null for none).
func (s *session) print(v json.RawMessage) int {
	if len(v) == 0 {
		v = json.RawMessage("null")
	}
	if err := s.out.line(v); err != nil {
		s.log.printf("write standard output: %v", err)
		return 1
	}
	return 0
}

// subscribe subscribes to every path and prints their updates until the end (see the package
// doc).
func (s *session) subscribe(ctx context.Context, c *client.Client) int {
	st := &stream{out: s.out, log: s.log, count: s.cmd.count, live: map[string]bool{}, done: make(chan struct{})}
	for _, path := range s.cmd.args {
		st.add(path)
		sctx, cancel := context.WithTimeout(ctx, s.cmd.timeout)
		_, err := c.Subscribe(sctx, path, st.handle)
		cancel()
		if err != nil {
			s.log.printf("subscribe to %s: %s", path, describe(err))
			return 1
		}
		s.log.printf("subscribed to %s", path)
	}
	select {
	case <-ctx.Done():
		s.log.printf("interrupted: closing")
		_ = c.Close()
		return 0
	case <-st.done:
		_ = c.Close()
		return st.code()
	case <-s.gaveUp:
		s.log.printf("gave up reconnecting")
		_ = c.Close()
		return 1
	}
}

// stream prints a subscription's updates and tells when to stop.
type stream struct {
	out   *printer
	log   *reporter
	count int // 0: no limit

	mu      sync.Mutex
	printed int
	live    map[string]bool // the paths still subscribed
	refused bool            // a path was refused on a reconnection
	exit    int             // the exit code, once done is closed
	done    chan struct{}   // closed at -count lines, when no path is left, or when a write fails
}

func (st *stream) add(path string) {
	st.mu.Lock()
	st.live[path] = true
	st.mu.Unlock()
}

// handle is every path's subscription handler.
func (st *stream) handle(u client.Update) {
	st.mu.Lock()
	defer st.mu.Unlock()
	select {
	case <-st.done:
		return // past -count, or a write failed
	default:
	}
	var line any = updateLine{Path: u.Path, Message: u.Message}
	if u.Revoked {
		r := revokedLine{Path: u.Path, Revoked: true, Message: u.Message}
		if u.Err != nil {
			r.Error = describe(u.Err)
			st.refused = true
		}
		line = r
		delete(st.live, u.Path)
		st.log.printf("subscription to %s revoked", u.Path)
	}
	if err := st.out.line(line); err != nil {
		st.log.printf("write standard output: %v", err)
		st.finish(1)
		return
	}
	st.printed++
	switch {
	case st.count > 0 && st.printed >= st.count:
		st.finish(0)
	case len(st.live) == 0:
		st.log.printf("no subscription left")
		if st.refused {
			st.finish(1)
		} else {
			st.finish(0)
		}
	}
}

// finish ends the stream with an exit code. st.mu is held.
func (st *stream) finish(code int) {
	st.exit = code
	close(st.done)
}

// code is the exit code once done is closed.
func (st *stream) code() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.exit
}

// updateLine is an update as printed.
type updateLine struct {
	Path    string          `json:"path"`
	Message json.RawMessage `json:"message"`
}

// revokedLine is a revocation as printed.
type revokedLine struct {
	Path    string          `json:"path"`
	Revoked bool            `json:"revoked"`
	Message json.RawMessage `json:"message,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// describe words an error for standard error: the status code and the server's message for a
// server's refusal; otherwise the error's text, with its cause when the text leaves it out (a
// lost connection's close code, say).
func describe(err error) string {
	var e *client.Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	if e.Kind != client.KindServer {
		s := err.Error()
		if e.Err != nil && !strings.Contains(s, e.Err.Error()) {
			s += ": " + e.Err.Error()
		}
		return s
	}
	s := fmt.Sprintf("%d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
	if e.Path != "" {
		s += " (path " + e.Path + ")"
	}
	return s
}

// printer writes JSON lines to standard output, one at a time.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

// line writes v as one line of compact JSON: json.RawMessage values are compacted, and HTML
// characters are left as the server sent them.
func (p *printer) line(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.w.Write(buf.Bytes())
	return err
}

// reporter writes the program's reports to standard error, one line at a time.
type reporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *reporter) printf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "nescli: "+format+"\n", a...)
}
