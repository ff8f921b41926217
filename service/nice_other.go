//go:build !linux

package service

// lowerThreadPriority does nothing where threads have no priority of
// their own that a process may lower (see nice_linux.go).
func lowerThreadPriority(int) error { return nil }
