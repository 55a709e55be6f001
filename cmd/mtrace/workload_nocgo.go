//go:build !cgo

package main

import "errors"

func benchRun(int64) (float64, error) {
	return 0, errors.New("this mtrace was built without cgo, so it has no built-in workload: give one after --")
}
