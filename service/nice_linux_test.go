//go:build linux

package service

import (
	"runtime"
	"syscall"
	"testing"
)

// TestLowerThreadPriority: the goroutine's thread gets the higher nice
// value; the thread of another goroutine keeps its own.
func TestLowerThreadPriority(t *testing.T) {
	niceOf := func() int {
		prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
		if err != nil {
			t.Fatal(err)
		}
		return 20 - prio
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := niceOf()
	got := make(chan int)
	go func() {
		if err := lowerThreadPriority(5); err != nil {
			t.Error(err)
		}
		got <- niceOf()
		// Ends locked: the thread ends with the goroutine.
	}()
	if n := <-got; n != min(before+5, 19) {
		t.Errorf("the job's thread has nice %d, want %d", n, min(before+5, 19))
	}
	if n := niceOf(); n != before {
		t.Errorf("this goroutine's thread went from nice %d to %d", before, n)
	}
}
