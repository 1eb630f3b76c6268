//go:build !unix

package testpeers

import (
	"errors"
	"os"
	"syscall"
)

// The peers this package starts run on Unix only; elsewhere the package builds, so that the
// tests that import it compile, and every peer fails to start or to be signalled.

// unsupported is a signal this platform cannot send.
type unsupported string

func (s unsupported) String() string { return string(s) }
func (unsupported) Signal()          {}

var sigStop, sigCont os.Signal = unsupported("SIGSTOP"), unsupported("SIGCONT")

var errNotUnix = errors.New("testpeers: process groups and signals need a Unix system")

func ownProcessGroup() *syscall.SysProcAttr    { return nil }
func signalGroup(pid int, sig os.Signal) error { return errNotUnix }
func killProcess(pid int) error                { return errNotUnix }
