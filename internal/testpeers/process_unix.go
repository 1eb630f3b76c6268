//go:build unix

package testpeers

import (
	"os"
	"syscall"
)

// sigStop and sigCont stop and continue a process (kill -STOP, kill -CONT).
var sigStop, sigCont os.Signal = syscall.SIGSTOP, syscall.SIGCONT

// ownProcessGroup makes a started command the leader of a process group of its own, so that
// signalGroup reaches its children too.
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig os.Signal) error { return syscall.Kill(-pid, sig.(syscall.Signal)) }

// killProcess kills one process by id.
func killProcess(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
