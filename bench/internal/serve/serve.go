// Package serve is the part every benchmark server shares: the -addr flag,
// the listener, the "listening ADDR" line the orchestrator waits for, and a
// plain net/http server. Keeping it in one place keeps the servers equal in
// everything but the WebSocket library.
package serve

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"syscall"
)

var addr = flag.String("addr", "127.0.0.1:0", "address to listen on")

// Main parses the flags (a server may define its own and parse them first),
// listens on -addr, prints "listening ADDR" to stdout and serves h with
// net/http until the process is killed.
func Main(h http.Handler) {
	flag.Parse()
	RaiseNoFile()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening %s\n", ln.Addr())
	srv := &http.Server{Handler: h}
	log.Fatal(srv.Serve(ln))
}

// RaiseNoFile raises the soft limit on open files to the hard limit, so that
// 10,000 connections fit. Go does this itself at startup since 1.19; doing it
// here says so and covers the case where the hard limit was raised later.
func RaiseNoFile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
