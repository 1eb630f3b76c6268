// Command wsclient is a small wscat on herald's WebSocket client: it sends each line of
// standard input as a text message and prints each message it receives on a line of its own.
//
//	go run ./examples/wsclient [-proxy URL] [-cacert FILE] [-proxy-cacert FILE] [-protocol P]... [-H 'Name: value']... URL
//
// At the end of standard input it closes the connection with 1000 (normal closure) and exits
// 0 once the closing handshake is done. When the server closes first, it exits 0 for 1000 and
// 1001 and 1 otherwise. A refused handshake prints the status to standard error and exits 1.
// A usage error exits 2; -h prints the usage and exits 0.
//
// Without -proxy, the proxy comes from the environment: HTTP_PROXY for ws://, HTTPS_PROXY for
// wss://, ALL_PROXY for both, NO_PROXY for the hosts reached directly. -proxy direct ignores
// the environment. Proxy URLs may be http://, https:// or socks5://, with user:password@.
//
// What the program reports (connected, closed, errors) goes to standard error; standard
// output holds the messages only.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herald-go/herald/websocket"
)

// maxLine bounds a line of standard input, that is an outgoing message.
const maxLine = 16 << 20

// drainWait bounds the wait, at the end of input, for what the server sent before our close.
const drainWait = 5 * time.Second

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the program, with its arguments and streams; it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsclient", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var protocols, headers listFlag
	proxy := fs.String("proxy", "", "proxy URL (http://, https://, socks5://; \"direct\" for none); default: the environment")
	caCert := fs.String("cacert", "", "PEM file of the roots that verify a wss:// server (default: the system's)")
	proxyCACert := fs.String("proxy-cacert", "", "PEM file of the roots that verify an https:// proxy (default: the system's)")
	fs.Var(&protocols, "protocol", "subprotocol to offer (repeatable)")
	fs.Var(&headers, "H", "extra handshake header, 'Name: value' (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wsclient [-proxy URL] [-cacert FILE] [-proxy-cacert FILE] [-protocol P]... [-H 'Name: value']... URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: the usage was asked for
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if !strings.Contains(fs.Arg(0), "://") {
		fmt.Fprintf(stderr, "wsclient: %q is not a URL: want ws://HOST:PORT/PATH (or wss://), such as ws://%s\n", fs.Arg(0), fs.Arg(0))
		fs.Usage()
		return 2
	}
	opts := &websocket.DialOptions{Protocols: protocols, Header: http.Header{}}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			fmt.Fprintf(stderr, "wsclient: -H %q: want 'Name: value'\n", h)
			return 2
		}
		opts.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	switch *proxy {
	case "":
	case "direct":
		opts.Proxy = websocket.NoProxy
	default:
		opts.Proxy = websocket.ProxyURL(*proxy)
	}
	var err error
	if opts.TLSConfig, err = rootsFrom(*caCert); err == nil {
		opts.ProxyTLS, err = rootsFrom(*proxyCACert)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsclient: %v\n", err)
		return 2
	}

	ws, resp, err := websocket.Dial(ctx, fs.Arg(0), opts)
	if err != nil {
		var pe *websocket.ProxyError
		switch {
		case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
			fmt.Fprintf(stderr, "wsclient: handshake refused: %s\n", resp.Status)
		case errors.As(err, &pe) && pe.Response != nil:
			fmt.Fprintf(stderr, "wsclient: proxy refused: %s\n", pe.Response.Status)
		}
		fmt.Fprintf(stderr, "wsclient: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "wsclient: connected to %s (status %d, subprotocol %q)\n", fs.Arg(0), resp.StatusCode, ws.Protocol())
	return session(ctx, ws, stdin, stdout, stderr)
}

// session relays standard input and the connection's messages until one side ends.
func session(ctx context.Context, ws *websocket.Conn, stdin io.Reader, stdout, stderr io.Writer) int {
	readerDone := make(chan error, 1)
	go func() {
		out := bufio.NewWriter(stdout)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				readerDone <- err
				return
			}
			out.Write(data)
			out.WriteByte('\n')
			if err := out.Flush(); err != nil {
				readerDone <- err
				return
			}
		}
	}()

	lines := make(chan string)
	inputErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ws.Done():
				return
			}
		}
		inputErr <- sc.Err() // nil at the end of input
	}()

	for {
		select {
		case line := <-lines:
			if err := ws.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
				fmt.Fprintf(stderr, "wsclient: write: %v\n", err)
				_ = ws.Close(websocket.StatusInternalError, "")
				<-readerDone
				return 1
			}
		case err := <-inputErr:
			code, reason := websocket.StatusNormalClosure, ""
			if err != nil {
				fmt.Fprintf(stderr, "wsclient: reading standard input: %v\n", err)
				code, reason = websocket.StatusMessageTooBig, "line too long"
			}
			// A ping first, as a barrier: the server answers it after what it sent before
			// (the echoes of our last lines, say), and the reader handles the pong after
			// printing those. Close then loses nothing the server sent before our close:
			// Conn.Close discards the data messages it reads itself while waiting for the
			// server's close frame.
			pingCtx, cancel := context.WithTimeout(ctx, drainWait)
			_ = ws.Ping(pingCtx, []byte("wsclient: end of input"))
			cancel()
			if cerr := ws.Close(code, reason); cerr != nil {
				fmt.Fprintf(stderr, "wsclient: close: %v\n", cerr)
				<-readerDone
				return 1
			}
			<-readerDone // the server's answer to our close
			fmt.Fprintf(stderr, "wsclient: closed by us: %v\n", describeClose(code, reason))
			if err != nil {
				return 1
			}
			return 0
		case err := <-readerDone:
			fmt.Fprintf(stderr, "wsclient: %v\n", err)
			switch websocket.CloseStatus(err) {
			case websocket.StatusNormalClosure, websocket.StatusGoingAway:
				return 0
			}
			return 1
		case <-ctx.Done():
			_ = ws.Close(websocket.StatusGoingAway, "interrupted")
			<-readerDone
			return 1
		}
	}
}

// rootsFrom returns a TLS configuration whose roots are those in a PEM file, or nil for "".
func rootsFrom(file string) (*tls.Config, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return &tls.Config{RootCAs: pool}, nil
}

// describeClose says how the program closed the connection: "1000 (normal closure), end of
// input", or with the reason it gave.
func describeClose(code websocket.StatusCode, reason string) string {
	if reason == "" {
		reason = "end of input"
	}
	return code.String() + ", " + reason
}
