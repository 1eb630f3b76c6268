//go:build unix

package soak

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/websocket"
)

// strictClose makes an attack that wants a close code fail when the connection ends without a
// close frame (a debugging aid: in the soak, the server may reset a connection still sending).
var strictClose = false

// attackWait is how long the server has to answer or close after an attack.
const attackWait = 10 * time.Second

// An attack does one hostile thing to the server at addr and checks that the server dealt
// with it: closed the connection, answered with an error, or carried on serving the
// connection, as each says. An error is the server's failure.
type attack struct {
	name string
	run  func(addr string) error
}

var attacks = []attack{
	{"garbage-tcp", func(addr string) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		junk := make([]byte, 4096)
		rand.Read(junk)
		c.Write(junk)
		return expectEOF(c)
	}},
	{"slowloris", func(addr string) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n", addr) // and never the end
		return expectEOF(c)
	}},
	{"bad-handshake", func(addr string) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n", addr)
		c.SetDeadline(time.Now().Add(attackWait))
		buf := make([]byte, 12)
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("no answer to a version-8 handshake: %v", err)
		}
		if bytes.Contains(buf, []byte("101")) {
			return fmt.Errorf("a version-8 handshake was accepted")
		}
		return nil
	}},
	{"garbage-frames", wsAttack(func(rc *rawConn) error {
		junk := make([]byte, 8192)
		rand.Read(junk)
		rc.c.Write(junk)
		return expectClose(rc, 0)
	})},
	{"unmasked-frame", wsAttack(func(rc *rawConn) error {
		rc.frame(0x1, true, false, []byte(`{"type":"hello","id":1,"version":"2"}`))
		return expectClose(rc, 1002)
	})},
	{"reserved-opcode", wsAttack(func(rc *rawConn) error {
		rc.frame(0x3, true, true, []byte("x"))
		return expectClose(rc, 1002)
	})},
	{"oversize-message", wsAttack(func(rc *rawConn) error {
		rc.text(bytes.Repeat([]byte("a"), maxRequestBytes+1))
		return expectClose(rc, 1009)
	})},
	{"oversize-length", wsAttack(func(rc *rawConn) error {
		// A header announcing 2^62 bytes, and no bytes.
		rc.c.Write([]byte{0x81, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
		return expectClose(rc, 0)
	})},
	{"fragment-flood", wsAttack(func(rc *rawConn) error {
		chunk := bytes.Repeat([]byte("b"), 8<<10)
		rc.frame(0x1, false, true, chunk)
		for i := 0; i < maxRequestBytes/len(chunk)+2; i++ {
			if rc.frame(0x0, false, true, chunk) != nil {
				break
			}
		}
		return expectClose(rc, 1009)
	})},
	{"invalid-utf8", wsAttack(func(rc *rawConn) error {
		rc.text([]byte("{\"type\":\"hello\",\"id\":\"\xff\xfe\"}"))
		return expectClose(rc, 1007)
	})},
	{"not-json", nesAttack(false, `this is not json {{{`, "error")},
	{"json-array", nesAttack(false, `[1,2,3]`, "error")},
	{"before-hello", nesAttack(false, `{"type":"request","id":7,"method":"GET","path":"/echo"}`, "error")},
	{"bad-version", nesAttack(false, `{"type":"hello","id":7,"version":"1"}`, "error+close")},
	{"deep-json-hello", nesAttack(false, `{"type":"hello","id":7,"version":"2","subs":`+deep(20000)+`}`, "error+close")},
	{"deep-json-request", nesAttack(true, `{"type":"request","id":7,"method":"POST","path":"/echo","payload":`+deep(20000)+`}`, "survive")},
	{"deep-json-object", nesAttack(true, `{"type":"message","id":7,"message":`+deepObject(8000)+`}`, "survive")},
	{"unknown-type", nesAttack(true, `{"type":"bogus","id":7}`, "error")},
	{"no-id", nesAttack(true, `{"type":"request","method":"GET","path":"/echo"}`, "survive")},
	{"odd-ids", nesAttack(true, `{"type":"request","id":{"a":[1e999]},"method":"GET","path":"/echo"}`, "survive")},
	{"sub-nowhere", nesAttack(true, `{"type":"sub","id":7,"path":"/nowhere/../../etc"}`, "error")},
	{"many-subs-hello", nesAttack(false, `{"type":"hello","id":7,"version":"2","subs":[`+manySubs(3000)+`]}`, "survive")},
	{"binary-frame", wsAttack(func(rc *rawConn) error {
		rc.sendJSON(map[string]any{"type": "hello", "id": 1, "version": "2"})
		rc.frame(0x2, true, true, []byte{0, 1, 2, 3})
		return expectServing(rc)
	})},
	{"ping-flood", wsAttack(func(rc *rawConn) error {
		rc.sendJSON(map[string]any{"type": "hello", "id": 1, "version": "2"})
		for i := 0; i < 500; i++ {
			if rc.frame(0x9, true, true, []byte("p")) != nil {
				break
			}
		}
		return expectServing(rc)
	})},
	{"fallback-nes-garbage", func(addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), attackWait)
		defer cancel()
		c, err := fallback.Dial(ctx, "http://"+addr+"/nes", &fallback.DialOptions{Proxy: websocket.NoProxy})
		if err != nil {
			return fmt.Errorf("fallback dial: %v", err)
		}
		defer c.Close()
		for _, m := range []string{`not json`, `{"type":"bogus","id":1}`, `{"type":"hello","id":2,"version":"2","subs":` + deep(20000) + `}`} {
			if err := c.Write(ctx, []byte(m)); err != nil {
				return nil // the session ended: acceptable
			}
		}
		// Every message gets an answer (or the session ends).
		for i := 0; i < 3; i++ {
			if _, err := c.Read(ctx); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("no answer over the fallback to hostile nes message %d", i+1)
				}
				return nil
			}
		}
		return nil
	}},
	{"fallback-bad-ticket", func(addr string) error {
		return expectStatus(addr, "/nes/send", http.Header{"Herald-Ticket": {"AAAAAAAAAAAA-forged"}}, `{"seq":1,"messages":["{}"]}`, 400)
	}},
	{"fallback-oversize-post", func(addr string) error {
		return expectStatus(addr, "/nes/send", http.Header{"Herald-Ticket": {"x"}}, `{"seq":1,"messages":["`+strings.Repeat("a", maxRequestBytes*2)+`"]}`, 400)
	}},
	{"fallback-bad-resume", func(addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), attackWait)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/nes/sse", nil)
		req.Header.Set("Last-Event-ID", "forged.ticket.42\xff")
		resp, err := hostileHTTP.Do(req)
		if err != nil {
			return fmt.Errorf("no answer to a forged resume: %v", err)
		}
		resp.Body.Close() // a new session (after a reset) or a refusal: both fine
		return nil
	}},
}

var hostileHTTP = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// expectStatus POSTs body and wants a 4xx status (at least min).
func expectStatus(addr, path string, h http.Header, body string, min int) error {
	ctx, cancel := context.WithTimeout(context.Background(), attackWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+path, strings.NewReader(body))
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	resp, err := hostileHTTP.Do(req)
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return nil // refused before the body was read, and the connection closed: fine
	}
	if err != nil {
		return fmt.Errorf("no answer to a hostile POST: %v", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode < min || resp.StatusCode >= 500 {
		return fmt.Errorf("a hostile POST to %s was answered %s", path, resp.Status)
	}
	return nil
}

func deep(n int) string       { return strings.Repeat("[", n) + strings.Repeat("]", n) }
func deepObject(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }

func manySubs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"/soak/many/%d"`, i)
	}
	return b.String()
}

func wsAttack(f func(*rawConn) error) func(string) error {
	return func(addr string) error {
		rc, err := dialRaw(addr, "/")
		if err != nil {
			return fmt.Errorf("handshake: %v", err)
		}
		defer rc.c.Close()
		return f(rc)
	}
}

// nesAttack sends msg (after a hello when helloFirst) and wants: "error", an error reply with
// id 7 or the connection closed; "error+close", the error reply and then the close; "survive", the connection still serving a request afterwards
// or closed, not stuck.
func nesAttack(helloFirst bool, msg, want string) func(string) error {
	return wsAttack(func(rc *rawConn) error {
		if helloFirst {
			rc.sendJSON(map[string]any{"type": "hello", "id": 1, "version": "2"})
		}
		rc.text([]byte(msg))
		if want == "survive" {
			return expectServing(rc)
		}
		rc.c.SetReadDeadline(time.Now().Add(attackWait))
		for {
			data, err := rc.read()
			if err != nil {
				if isTimeout(err) {
					return fmt.Errorf("neither an answer nor a close within %s", attackWait)
				}
				return nil // closed
			}
			var m nesMsg
			json.Unmarshal(data, &m)
			switch {
			case m.Type == "ping", m.Type == "hello" && string(m.ID) == "1":
				continue
			case m.StatusCode >= 400 && want == "error+close":
				// A failed hello is answered, then the connection closes (nothing is left
				// holding a slot until the hello timeout, or for ever).
				if err := expectClose(rc, 0); err != nil {
					return fmt.Errorf("a failed hello was answered but the connection stayed open: %v", err)
				}
				return nil
			case m.StatusCode >= 400:
				return nil
			case string(m.ID) == "7":
				return fmt.Errorf("a hostile message was answered without an error: %.200s", data)
			}
		}
	})
}

// expectServing asks for /echo and wants the reply, or the connection closed.
func expectServing(rc *rawConn) error {
	rc.sendJSON(map[string]any{"type": "request", "id": 99, "method": "GET", "path": "/echo"})
	rc.c.SetReadDeadline(time.Now().Add(attackWait))
	for {
		data, err := rc.read()
		if err != nil {
			if isTimeout(err) {
				return fmt.Errorf("the connection neither served a request nor closed within %s", attackWait)
			}
			return nil
		}
		var m nesMsg
		json.Unmarshal(data, &m)
		if string(m.ID) == "99" {
			return nil
		}
	}
}

// expectClose wants the connection closed, with code when it is not 0 (a close frame, or
// the TCP connection ending).
func expectClose(rc *rawConn, code int) error {
	rc.c.SetReadDeadline(time.Now().Add(attackWait))
	for {
		_, err := rc.read()
		if err == nil {
			continue
		}
		var cf closeFrame
		switch {
		case errors.As(err, &cf):
			if cf.code == 1005 && time.Since(rc.start) >= helloTimeout {
				return nil // the hello timeout came first: a loaded CPU took that long
			}
			if code != 0 && cf.code != code {
				return fmt.Errorf("closed with %d, want %d", cf.code, code)
			}
			return nil
		case isTimeout(err):
			return fmt.Errorf("not closed within %s", attackWait)
		default:
			if code != 0 && strictClose {
				return fmt.Errorf("connection ended without a close frame (want %d): %v", code, err)
			}
			// The server may close the TCP connection before we read its close frame (a
			// write of ours hit the closed socket): a close, but the code is unknown.
			return nil
		}
	}
}

func expectEOF(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(attackWait))
	_, err := io.Copy(io.Discard, c)
	if isTimeout(err) {
		return fmt.Errorf("connection not closed within %s", attackWait)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// phaseHostile: attackers run every attack over and over while the watchers receive a steady
// stream; no watcher may miss anything, and every attack must be dealt with.
func phaseHostile(e *env, r *row) {
	const path = "/soak/hostile"
	watchers := e.watch(r, path)
	stop := make(chan struct{})
	published := e.streamTo(path, 200, 10*time.Millisecond, watchers, stop)

	var (
		mu    sync.Mutex
		runs  = map[string]int{}
		fails = map[string][]string{}
		wg    sync.WaitGroup
		until = time.Now().Add(e.cfg.hostileFor)
		n     int
	)
	for w := 0; w < e.cfg.hostile; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every attacker goes through every attack once, in its own order, then at random.
			order := mrand.Perm(len(attacks))
			for i := 0; (i < len(order) || time.Now().Before(until)) && e.ctx.Err() == nil; i++ {
				a := attacks[mrand.IntN(len(attacks))]
				if i < len(order) {
					a = attacks[order[i]]
				}
				err := a.run(e.srv.addr)
				mu.Lock()
				runs[a.name]++
				n++
				if err != nil {
					fails[a.name] = append(fails[a.name], err.Error())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	hostileHTTP.CloseIdleConnections()
	close(stop)
	r.msgs = <-published
	r.conns += n
	for name, errs := range fails {
		r.fail("attack %s failed %d of %d times, e.g. %s", name, len(errs), runs[name], errs[0])
	}
	if !waitDelivered(e.ctx, watchers, map[string]int{path: r.msgs}, 30*time.Second) {
		r.fail("the watchers did not have every publication within 30 s: %s", behind(watchers, map[string]int{path: r.msgs}))
	}
	tallyInto(r, watchers, map[string]int{path: r.msgs})
	r.dropped = fmt.Sprintf("%d attacks, %d kinds", n, len(runs))
	if !waitUntil(e.ctx, grace+heartbeatEvery+heartbeatWait+5*time.Second, func() bool { return e.srv.sockets() == len(watchers) }) {
		r.fail("%d sockets on the server after the attacks, %d watchers", e.srv.sockets(), len(watchers))
	}
	closeAll(watchers)
	if !waitUntil(e.ctx, grace+5*time.Second, func() bool { return e.srv.sockets() == 0 }) {
		r.fail("%d sockets left on the server after every client closed", e.srv.sockets())
	}
}
