//go:build !linux

package bench

import "errors"

func yieldCPU(bool) error { return errors.New("--loadgen-idle needs Linux") }
