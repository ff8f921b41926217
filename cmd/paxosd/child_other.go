//go:build !linux

package main

import "syscall"

// childSysProcAttr: outside Linux there is no parent-death signal, so a
// COMMAND whose paxosd is killed with SIGKILL keeps running; its session
// still expires after the TTL and the lock passes on, which fencing tokens
// must then cover. With group the child leads a process group of its own.
func childSysProcAttr(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group}
}
