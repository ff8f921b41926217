package bench

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// schedIdle is Linux's SCHED_IDLE policy: a thread that runs only when no
// other wants the CPU, and yields it at once when one wakes.
const schedIdle = 5

// yieldCPU puts every thread of this process (threads made later inherit
// it from their maker) under SCHED_IDLE, or back under the normal policy
// (SCHED_OTHER, 0) when idle is false. On Linux the policy is per thread,
// so setting it for the process alone would leave most of the Go runtime's
// threads as they were.
func yieldCPU(idle bool) error {
	policy := 0
	if idle {
		policy = schedIdle
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	var param struct{ priority int32 }
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param))); errno != 0 && errno != syscall.ESRCH {
			return errno
		}
	}
	return nil
}
