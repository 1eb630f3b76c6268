package testpeers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file runs Debian's redis-server for the tests of broker/redis: a plain server, a
// Sentinel, and a small Cluster, each on free loopback ports, in a directory of its own (see
// daemon.go for the process group, the watchdog and the cleanup).

// RedisOptions configure StartRedis. The zero value is a server without persistence.
type RedisOptions struct {
	// AOF turns the append-only file on, fsynced at every write (appendfsync always), so that
	// a server killed with SIGKILL and restarted keeps every acknowledged write. Zero runs
	// with no persistence at all (--save "" --appendonly no): a restart loses everything.
	AOF bool
	// ReplicaOf, "host:port", makes the server a replica of that master.
	ReplicaOf string
	// Args are more command-line options, appended as given (e.g. "--cluster-enabled", "yes").
	Args []string
}

// Redis is a redis-server started by StartRedis. Its methods are safe for concurrent use.
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	argv []string

	mu   sync.Mutex
	d    *daemon // nil while killed
	runs int
}

// redisBin returns the path of redis-server, skipping or failing the test without it.
func redisBin(t testing.TB) string {
	t.Helper()
	return sbin(t, "redis-server", "redis-server")
}

// RedisVersion returns redis-server's version line, or "" when it is missing.
func RedisVersion() string {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		p = "/usr/bin/redis-server"
	}
	return version(p, "--version")
}

// StartRedis runs Debian's redis-server on a free loopback port for the length of the test and
// waits until it answers PING. opts may be nil. It skips or fails the test (see the package
// doc) when redis-server is not installed (`make peers` installs it as root).
func StartRedis(t testing.TB, opts *RedisOptions) *Redis {
	t.Helper()
	if opts == nil {
		opts = &RedisOptions{}
	}
	r := &Redis{t: t, bin: redisBin(t), dir: daemonDir(t, "redis", "")}
	var last error
	for range 3 {
		r.port = freePort(t)
		r.argv = []string{r.bin,
			"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
			"--protected-mode", "no", "--daemonize", "no", "--logfile", "", "--save", "",
		}
		if opts.AOF {
			r.argv = append(r.argv, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			r.argv = append(r.argv, "--appendonly", "no")
		}
		if opts.ReplicaOf != "" {
			host, port, _ := net.SplitHostPort(opts.ReplicaOf)
			r.argv = append(r.argv, "--replicaof", host, port)
		}
		r.argv = append(r.argv, opts.Args...)
		if last = r.start(); last == nil {
			t.Cleanup(r.cleanup)
			return r
		}
	}
	t.Fatalf("redis-server did not start: %v", last)
	return nil
}

// start runs the server and waits for PING, with r.mu not held.
func (r *Redis) start() error {
	r.mu.Lock()
	r.runs++
	name := "redis-server." + strconv.Itoa(r.runs)
	r.mu.Unlock()
	d, err := runDaemon(name, r.dir, r.argv, "")
	if err != nil {
		return err
	}
	if err := d.waitAccepting(r.port); err != nil {
		d.stop()
		return fmt.Errorf("%w\n%s", err, d.collect(r.dir, nil))
	}
	if err := waitPing(r.Addr(), daemonStartTimeout); err != nil {
		d.stop()
		return fmt.Errorf("%w\n%s", err, d.collect(r.dir, nil))
	}
	r.mu.Lock()
	r.d = d
	r.mu.Unlock()
	return nil
}

func (r *Redis) cleanup() {
	r.mu.Lock()
	d := r.d
	r.d = nil
	r.mu.Unlock()
	if d != nil {
		d.stop()
	}
	if r.t.Failed() {
		var logs []string
		for i := 1; i <= r.runs; i++ {
			logs = append(logs, "redis-server."+strconv.Itoa(i)+".out")
		}
		r.t.Logf("redis-server %s's output:\n%s", r.Addr(), (&daemon{name: "redis"}).collect(r.dir, logs))
	}
}

// Addr returns the server's address, 127.0.0.1:PORT. It stays the same across Restart.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Port returns the server's port.
func (r *Redis) Port() int { return r.port }

// Kill kills the server with SIGKILL and waits for it to be gone. Its directory (and the
// append-only file, with AOF) stays for Restart.
func (r *Redis) Kill() {
	r.mu.Lock()
	d := r.d
	r.d = nil
	r.mu.Unlock()
	if d != nil {
		d.stop()
	}
}

// Pause stops the server with SIGSTOP: it keeps its connections and its port but answers
// nothing, as a server behind a network that black-holes traffic, until Resume.
func (r *Redis) Pause() { r.signal(sigStop) }

// Resume continues a server stopped by Pause (SIGCONT).
func (r *Redis) Resume() { r.signal(sigCont) }

func (r *Redis) signal(sig os.Signal) {
	r.mu.Lock()
	d := r.d
	r.mu.Unlock()
	if d != nil {
		_ = signalGroup(d.cmd.Process.Pid, sig)
	}
}

// Restart starts the server again on the same port, from the same directory (so that with AOF
// it reloads its data), killing it first if it runs. It fails the test if the server does not
// answer PING in time.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	var err error
	for range 50 { // the port may still be held for a moment by the killed server
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("redis-server did not restart on %s: %v", r.Addr(), err)
}

// Do sends one command to the server, one argument per word, and returns its reply, for test
// set-up ("CONFIG", "SET", ...): a status, integer or bulk string as it is, an error reply as
// an error, an array as its length.
func (r *Redis) Do(args ...string) (string, error) { return redisDo(r.Addr(), args...) }

// RedisCommand sends one command to the server at addr and returns its reply as Redis.Do does
// (an array's length for an array).
func RedisCommand(addr string, args ...string) (string, error) { return redisDo(addr, args...) }

// redisDo sends one command as a RESP array and reads one reply (simple, error, integer or
// bulk string; the first line of anything else).
func redisDo(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("redis %s: %s", addr, line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case len(line) > 0:
		return line[1:], nil
	}
	return line, nil
}

// waitPing waits until the server at addr answers PING with PONG (a server loading its
// append-only file answers -LOADING meanwhile).
func waitPing(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		reply, err := redisDo(addr, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis %s answered no PING within %v (last: %q, %v)", addr, timeout, reply, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Sentinel is a redis-server --sentinel started by StartSentinel.
type Sentinel struct {
	port int
}

// Addr returns the Sentinel's address, 127.0.0.1:PORT.
func (s *Sentinel) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// sentinelConf is the configuration of StartSentinel: one Sentinel (quorum 1) watching the
// master, quick to declare it down (1 s) and to fail over.
const sentinelConf = `port {{PORT}}
bind 127.0.0.1
protected-mode no
daemonize no
logfile ""
dir {{DIR}}
sentinel resolve-hostnames no
sentinel monitor {{NAME}} 127.0.0.1 {{MASTER}} 1
sentinel down-after-milliseconds {{NAME}} 1000
sentinel failover-timeout {{NAME}} 5000
sentinel parallel-syncs {{NAME}} 1
`

// StartSentinel runs `redis-server --sentinel` on a free loopback port, monitoring master under
// name with a quorum of one, for the length of the test. It declares the master down after one
// second without answer, and then promotes one of its replicas.
func StartSentinel(t testing.TB, name string, master *Redis) *Sentinel {
	t.Helper()
	dir := daemonDir(t, "redis-sentinel", "")
	conf := strings.NewReplacer("{{DIR}}", dir, "{{NAME}}", name, "{{MASTER}}", strconv.Itoa(master.Port())).Replace(sentinelConf)
	port := startDaemon(t, daemonSpec{
		name:     "redis-sentinel",
		dir:      dir,
		confName: "sentinel.conf",
		conf:     conf,
		argv:     []string{redisBin(t), filepath.Join(dir, "sentinel.conf"), "--sentinel"},
	})
	s := &Sentinel{port: port}
	if err := waitPing(s.Addr(), daemonStartTimeout); err != nil {
		t.Fatal(err)
	}
	return s
}

// Master asks the Sentinel for the address of the master it knows by name.
func (s *Sentinel) Master(name string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "SENTINEL get-master-addr-by-name %s\r\n", name); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	var parts []string
	for len(parts) < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "*-1") || strings.HasPrefix(line, "-") {
			return "", fmt.Errorf("sentinel: %s", line)
		}
		if !strings.HasPrefix(line, "*") && !strings.HasPrefix(line, "$") {
			parts = append(parts, line)
		}
	}
	return net.JoinHostPort(parts[0], parts[1]), nil
}

// StartRedisCluster runs n redis-servers in cluster mode (masters only, no replicas), joins
// them with `redis-cli --cluster create` and waits until the cluster says it is ok. It
// returns the servers; any of their addresses is a seed for a cluster client.
func StartRedisCluster(t testing.TB, n int) []*Redis {
	t.Helper()
	cli := sbin(t, "redis-cli", "redis-tools")
	var nodes []*Redis
	args := []string{"--cluster", "create"}
	for range n {
		r := StartRedis(t, &RedisOptions{Args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		}})
		nodes = append(nodes, r)
		args = append(args, r.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(daemonStartTimeout)
	for _, r := range nodes {
		for {
			info, err := r.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redis cluster not ok on %s: %q %v", r.Addr(), info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}
