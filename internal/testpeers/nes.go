package testpeers

// The two nes servers that tests run the same assertions against: the reference
// (hapi-nes-server.js, hapi + @hapi/nes) and herald's demo (examples/nes), started with the same
// configuration by StartNes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NesImpl names a nes server implementation that StartNes runs. Both serve the same routes,
// subscriptions and account (see the header comments of hapi-nes-server.js and
// examples/nes/main.go).
type NesImpl string

const (
	// HapiNes is the reference: hapi 21 + @hapi/nes 14.0.1 (hapi-nes-server.js), run by Node.
	HapiNes NesImpl = "hapi"
	// HeraldNes is herald's examples/nes, built once per test binary by BuildProgram.
	HeraldNes NesImpl = "herald"
)

// NesImpls returns every implementation, the reference first, for tests that run the same
// assertions against each.
func NesImpls() []NesImpl { return []NesImpl{HapiNes, HeraldNes} }

// The account that both servers accept with HTTP Basic authentication, on /auth/h (route id
// authhello, which answers "Hello John Doe") and on the token and cookie endpoint.
const (
	NesUsername     = "john"
	NesUserPassword = "secret"
)

// NesOptions configures a server started by StartNes. The zero value is both servers' defaults.
type NesOptions struct {
	// HeartbeatInterval is how often the server pings every socket, in whole milliseconds.
	// Zero means 15 s.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long a socket may stay silent after a ping, in whole
	// milliseconds, below HeartbeatInterval. Zero means 5 s.
	HeartbeatTimeout time.Duration
	// Auth is nes's authentication type: "direct" (the hello carries {headers:
	// {authorization}}), "token" (GET /nes/auth with Basic auth answers a token, which the
	// hello carries; see NesServer.Token) or "cookie" (the same GET sets the nes cookie, which
	// the WebSocket upgrade carries; see NesServer.Cookie). Authentication is optional in all
	// three. Empty means "direct".
	Auth string
	// Port is the server's port on 127.0.0.1. Zero means a free port, chosen at the first
	// start; a server started again after Stop or Kill keeps its port either way.
	Port int
}

// nesStartTimeout bounds how long a server may take to print its address.
const nesStartTimeout = 30 * time.Second

// NesServer is a nes server process started by StartNes, on a fixed address for its whole
// life: it can be killed, stopped, frozen and started again, and clients reconnect to the same
// URL. It is stopped when the test that started it ends; a data race that herald's demo reports
// on its standard error fails the test. Its output goes to that test's log when the test fails
// (see Program).
//
// Its methods are safe for concurrent use; each takes the test (or subtest) calling it, which a
// failure fails.
type NesServer struct {
	// Impl is the implementation that runs.
	Impl NesImpl
	// URL is the WebSocket URL: ws://127.0.0.1:PORT.
	URL string
	// HTTPURL is the base URL of plain HTTP requests (the auth endpoint, /publish, /revoke):
	// http://127.0.0.1:PORT.
	HTTPURL string
	// Addr is 127.0.0.1:PORT.
	Addr string

	owner  testing.TB // the test that started the server: the processes' owner (see startProgram)
	opts   NesOptions
	bin    string // node or the examples/nes binary
	mu     sync.Mutex
	port   int
	proc   *Program // nil while stopped
	frozen bool     // whether Freeze stopped proc
}

// StartNes starts impl configured by opts and returns once it accepts connections. It skips
// or fails the test when the implementation cannot run here: Node or the pinned packages missing
// for HapiNes, the go command missing for HeraldNes (see the package doc for
// HERALD_REQUIRE_PEERS). The server is stopped when the test ends.
func StartNes(t testing.TB, impl NesImpl, opts NesOptions) *NesServer {
	t.Helper()
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 15 * time.Second
	}
	if opts.HeartbeatTimeout == 0 {
		opts.HeartbeatTimeout = 5 * time.Second
	}
	if opts.HeartbeatInterval%time.Millisecond != 0 || opts.HeartbeatTimeout%time.Millisecond != 0 ||
		opts.HeartbeatTimeout < time.Millisecond || opts.HeartbeatTimeout >= opts.HeartbeatInterval {
		t.Fatalf("testpeers.NesOptions: heartbeat interval %v and timeout %v must be whole milliseconds, the timeout below the interval",
			opts.HeartbeatInterval, opts.HeartbeatTimeout)
	}
	if opts.Auth == "" {
		opts.Auth = "direct"
	}
	switch opts.Auth {
	case "direct", "token", "cookie":
	default:
		t.Fatalf("testpeers.NesOptions: Auth must be direct, token or cookie, not %q", opts.Auth)
	}
	if opts.Port < 0 || opts.Port > 65535 {
		t.Fatalf("testpeers.NesOptions: Port %d is not a port", opts.Port)
	}
	s := &NesServer{Impl: impl, owner: t, opts: opts, port: opts.Port}
	switch impl {
	case HapiNes:
		s.bin = Node(t)
		if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "@hapi", "nes")); err != nil {
			missing(t, "@hapi/nes in "+filepath.Join(Dir(), "node_modules"))
		}
	case HeraldNes:
		s.bin = heraldNesBinary(t)
	default:
		t.Fatalf("testpeers.StartNes: unknown implementation %q (want HapiNes or HeraldNes)", impl)
	}
	s.Start(t)
	return s
}

// Start starts the server again on its port, after Stop or Kill, and returns once it accepts
// connections. The test fails when the server is running.
func (s *NesServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		t.Fatalf("%s nes server on %s: Start while it runs (Stop or Kill it first)", s.Impl, s.Addr)
	}
	// A port just left by a killed server is normally free at once (both servers listen with
	// SO_REUSEADDR); retry a little in case the system is slow to release it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, line, err := s.spawn()
		if err == nil {
			s.proc, s.frozen = p, false
			s.listening(t, line)
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("%s nes server: %v", s.Impl, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var errAddrInUse = errors.New("address already in use")

// args returns the command line arguments for the configuration and port.
func (s *NesServer) args() []string {
	o := s.opts
	if s.Impl == HapiNes {
		return []string{filepath.Join(Dir(), "hapi-nes-server.js"), "--port", strconv.Itoa(s.port), "--auth", o.Auth,
			strconv.FormatInt(o.HeartbeatInterval.Milliseconds(), 10), strconv.FormatInt(o.HeartbeatTimeout.Milliseconds(), 10)}
	}
	return []string{"-addr", "127.0.0.1:" + strconv.Itoa(s.port), "-auth", o.Auth,
		"-heartbeat-interval", o.HeartbeatInterval.String(), "-heartbeat-timeout", o.HeartbeatTimeout.String()}
}

// spawn runs the server process and waits for its first line. The test that started the
// server stops the process when it ends (see stop), before the Program's own cleanup.
func (s *NesServer) spawn() (*Program, string, error) {
	p, err := startProgram(s.owner, s.bin, ProgramOptions{Name: string(s.Impl) + " nes server", Args: s.args(), Dir: Dir(), Wait: nesStartTimeout})
	if err != nil {
		return nil, "", err
	}
	s.owner.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.proc == p {
			s.stop(s.owner, false)
		}
	})
	line, err := p.firstLine()
	if err == nil {
		return p, line, nil
	}
	select {
	case <-p.Exited():
		if p.Stderr.Contains("EADDRINUSE") || p.Stderr.Contains("address already in use") {
			return nil, "", fmt.Errorf("port %d: %w", s.port, errAddrInUse)
		}
	default:
		_ = p.cmd.Process.Kill()
		<-p.Exited()
	}
	return nil, "", fmt.Errorf("%v (its output is in the test log)", err)
}

// listening reads the port from the server's first line and, at the first start, sets the
// addresses.
func (s *NesServer) listening(t testing.TB, line string) {
	t.Helper()
	var port string
	var ok bool
	if s.Impl == HapiNes {
		port, ok = strings.CutPrefix(line, "listening ")
	} else if addr, found := strings.CutPrefix(line, "listening on http://"); found {
		_, port, ok = strings.Cut(addr, ":")
	}
	n, err := strconv.Atoi(port)
	if !ok || err != nil || (s.port != 0 && n != s.port) {
		s.stop(t, true)
		t.Fatalf("%s nes server printed %q, want it listening on port %d", s.Impl, line, s.port)
	}
	if s.URL != "" {
		return // a restart, on the same port: the fields stay as they are, which others may read
	}
	s.port = n
	s.Addr = "127.0.0.1:" + port
	s.URL = "ws://" + s.Addr
	s.HTTPURL = "http://" + s.Addr
}

// Stop stops the server as an operator would (SIGTERM: the server closes its sockets and
// exits), waiting for it to exit; Start starts it again. The test fails when the server is not
// running.
func (s *NesServer) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running(t, "Stop")
	s.stop(t, false)
}

// Kill kills the server process (SIGKILL: its connections drop without a close frame, as when
// a server crashes), waiting for it to exit; Start starts it again. The test fails when the
// server is not running.
func (s *NesServer) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running(t, "Kill")
	s.stop(t, true)
}

// Freeze suspends the server process (SIGSTOP) and returns once all its threads have stopped:
// it answers nothing, not even pings or TCP closes, while its connections stay open, until
// Thaw. The test fails when the server is not running.
func (s *NesServer) Freeze(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running(t, "Freeze")
	if err := s.proc.Signal(sigStop); err != nil {
		t.Fatalf("%s nes server: SIGSTOP: %v", s.Impl, err)
	}
	s.frozen = true
	// kill(2) returns once the signal is queued; the threads stop only as each is next
	// scheduled, and until then the others go on serving. Wait for every one of them.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stopped, err := allThreadsStopped(s.proc.cmd.Process.Pid)
		if err != nil {
			t.Fatalf("%s nes server: after SIGSTOP: %v", s.Impl, err)
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s nes server: some threads still run 5 s after SIGSTOP", s.Impl)
		}
		time.Sleep(time.Millisecond)
	}
}

// allThreadsStopped reports whether every thread of process pid is stopped, from Linux's
// /proc/PID/task/TID/stat.
func allThreadsStopped(pid int) (bool, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false, fmt.Errorf("cannot read the threads' states (/proc/%d/task): Freeze needs Linux's /proc", pid)
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread has exited
		}
		// "TID (COMM) STATE ...": COMM may hold spaces and parentheses, so cut at the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("%s: cannot parse %q", f, b)
		}
		switch b[i+2] {
		case 'T', 't', 'Z', 'X': // stopped, traced, or exiting
		default:
			return false, nil
		}
	}
	return true, nil
}

// Thaw resumes a server that Freeze suspended (SIGCONT). The test fails when the server is not
// running.
func (s *NesServer) Thaw(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running(t, "Thaw")
	if err := s.proc.Signal(sigCont); err != nil {
		t.Fatalf("%s nes server: SIGCONT: %v", s.Impl, err)
	}
	s.frozen = false
}

// running fails the test when the server is stopped. s.mu is held.
func (s *NesServer) running(t testing.TB, what string) {
	t.Helper()
	if s.proc == nil {
		t.Fatalf("%s nes server on %s: %s while it is stopped", s.Impl, s.Addr, what)
	}
	select {
	case <-s.proc.Exited():
		p := s.proc
		s.proc = nil
		t.Fatalf("%s nes server on %s: %s, but it had exited by itself (%v)", s.Impl, s.Addr, what, p.Err())
	default:
	}
}

// stop ends the process (kill: SIGKILL at once; else SIGTERM, then SIGKILL after 10 s) and
// waits for it. It fails the test when the process had exited before it was told to, or when it
// reported a data race (see Program). s.mu is held.
func (s *NesServer) stop(t testing.TB, kill bool) {
	t.Helper()
	p := s.proc
	s.proc = nil
	select {
	case <-p.Exited():
		t.Errorf("%s nes server on %s exited by itself (%v)", s.Impl, s.Addr, p.Err())
	default:
		if kill {
			p.Stop(t, syscall.SIGKILL, 10*time.Second)
			return
		}
		if s.frozen {
			_ = p.Signal(sigCont)
		}
	}
	p.Stop(t, syscall.SIGTERM, 10*time.Second)
}

// Token fetches a token from the auth endpoint (GET /nes/auth with Basic john:secret), for a
// server started with Auth "token": the hello's auth. The test fails on any other answer than
// {status: "authenticated", token}.
func (s *NesServer) Token(t testing.TB) string {
	t.Helper()
	res, body := s.fetchAuth(t)
	var out struct{ Status, Token string }
	if err := json.Unmarshal(body, &out); err != nil || out.Status != "authenticated" || out.Token == "" {
		t.Fatalf("%s nes server: GET /nes/auth answered %d %s, want a token", s.Impl, res.StatusCode, body)
	}
	return out.Token
}

// Cookie fetches the nes cookie from the auth endpoint (GET /nes/auth with Basic
// john:secret), for a server started with Auth "cookie": the WebSocket upgrade request carries
// it. The test fails on any other answer than {status: "authenticated"} with the cookie set.
func (s *NesServer) Cookie(t testing.TB) *http.Cookie {
	t.Helper()
	res, body := s.fetchAuth(t)
	var out struct{ Status string }
	if err := json.Unmarshal(body, &out); err != nil || out.Status != "authenticated" {
		t.Fatalf("%s nes server: GET /nes/auth answered %d %s, want {status: authenticated}", s.Impl, res.StatusCode, body)
	}
	for _, c := range res.Cookies() {
		if c.Name == "nes" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("%s nes server: GET /nes/auth set no nes cookie (Set-Cookie: %q)", s.Impl, res.Header.Values("Set-Cookie"))
	return nil
}

func (s *NesServer) fetchAuth(t testing.TB) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.HTTPURL+"/nes/auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(NesUsername, NesUserPassword)
	return s.do(t, req)
}

// Post sends body, encoded as JSON, in a plain HTTP POST to path (such as "/publish" or
// "/revoke") and returns the answer's status code and body. The test fails when the request
// does.
func (s *NesServer) Post(t testing.TB, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.HTTPURL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, out := s.do(t, req)
	return res.StatusCode, out
}

// do runs one request on a connection of its own, so that no idle connection (nor its
// goroutines) outlives it.
func (s *NesServer) do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}} // no proxy
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s nes server: %s %s: %v", s.Impl, req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s nes server: %s %s: %v", s.Impl, req.Method, req.URL.Path, err)
	}
	return res, body
}

// heraldNesBinary returns the path of examples/nes built for this test binary (see
// BuildProgram), skipping or failing the test when there is no go command to build it with
// (see the package doc), failing it when the build fails.
func heraldNesBinary(t testing.TB) string {
	t.Helper()
	bin, err := buildProgram("./examples/nes")
	if errors.Is(err, exec.ErrNotFound) {
		missing(t, "the go command, to build examples/nes")
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
