//go:build linux

package service

import (
	"runtime"
	"syscall"
)

// lowerThreadPriority pins the calling goroutine to its thread and makes
// the thread's nice value by nice higher than it was (at most 19): Linux
// schedules threads, not processes, so this lowers the priority of this
// goroutine's work alone. The goroutine must end without unlocking: the
// runtime then ends the thread with it, rather than hand a thread of low
// priority to other goroutines (an unprivileged process cannot raise a
// thread's priority back).
func lowerThreadPriority(nice int) error {
	runtime.LockOSThread()
	tid := syscall.Gettid()
	// The raw system call answers 20 - nice (1 for nice 19, 40 for -20).
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return err
	}
	return syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(20-prio+nice, 19))
}
