package poller

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a Conn on the server side of a loopback TCP connection, and the client side.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err := ln.Accept()
	require.NoError(t, err)
	pc, err := NewConn(server)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = pc.Close()
		_ = client.Close()
	})
	return pc, client.(*net.TCPConn)
}

func TestConnReadWrite(t *testing.T) {
	pc, client := pair(t)
	assert.Equal(t, client.LocalAddr().String(), pc.RemoteAddr().String())
	assert.Equal(t, client.RemoteAddr().String(), pc.LocalAddr().String())
	go func() {
		time.Sleep(20 * time.Millisecond) // the read below waits for the poller first
		_, _ = client.Write([]byte("hello"))
	}()
	buf := make([]byte, 16)
	n, err := pc.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))

	// A write larger than the socket buffers waits for the reader, then goes out whole.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(big))))
		got <- b
	}()
	n, err = pc.Write(big)
	require.NoError(t, err)
	assert.Equal(t, len(big), n)
	assert.True(t, bytes.Equal(big, <-got))

	require.NoError(t, client.Close())
	_, err = pc.Read(buf)
	assert.ErrorIs(t, err, io.EOF)
}

func TestConnDeadlines(t *testing.T) {
	pc, client := pair(t)
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := pc.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	// A deadline moved into the past interrupts a read that waits.
	require.NoError(t, pc.SetReadDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() {
		_, err := pc.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, pc.SetReadDeadline(time.Unix(1, 0)))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("a past deadline did not interrupt the read")
	}

	// A write to a peer that does not read ends at its deadline.
	require.NoError(t, pc.SetWriteDeadline(time.Now().Add(100*time.Millisecond)))
	_, err = pc.Write(make([]byte, 64<<20))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	_ = client
}

func TestConnCloseWakesWaiters(t *testing.T) {
	pc, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := pc.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, pc.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the read")
	}
	assert.ErrorIs(t, pc.Close(), net.ErrClosed)
}

// runner reads what there is, parks, and counts its timer's firings.
type runner struct {
	pc     *Conn
	timers atomic.Int32
	read   chan string
	closed chan error
}

func (r *runner) Run() {
	buf := make([]byte, 64)
	for {
		r.pc.SetNoWait(true)
		n, err := r.pc.Read(buf)
		r.pc.SetNoWait(false)
		switch {
		case err == nil:
			r.read <- string(buf[:n])
		case errors.Is(err, ErrWouldBlock):
			if r.pc.Park() {
				return
			}
		default:
			r.pc.Finish()
			r.closed <- err
			return
		}
	}
}

func (r *runner) Timer() { r.timers.Add(1) }

// A served Conn runs its owner only when there is something to do, and its timer fires.
func TestConnServe(t *testing.T) {
	pc, client := pair(t)
	r := &runner{pc: pc, read: make(chan string, 4), closed: make(chan error, 1)}
	pc.Serve(r)
	pc.SetTimer(10 * time.Millisecond)
	for _, msg := range []string{"one", "two"} {
		time.Sleep(30 * time.Millisecond) // parked meanwhile
		_, err := client.Write([]byte(msg))
		require.NoError(t, err)
		select {
		case got := <-r.read:
			assert.Equal(t, msg, got)
		case <-time.After(5 * time.Second):
			t.Fatal("a parked connection was not run when bytes arrived")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); r.timers.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, int32(1), r.timers.Load(), "the timer fires once")
	require.NoError(t, client.Close())
	select {
	case err := <-r.closed:
		assert.ErrorIs(t, err, io.EOF)
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's close did not run the owner")
	}
}
