package main

import "syscall"

// childSysProcAttr: the kernel sends the child SIGTERM when the thread
// that forked it exits (see child.go for why that thread is locked), and
// with group the child leads a process group of its own.
func childSysProcAttr(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: group}
}
