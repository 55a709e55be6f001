package workload

import (
	"errors"
	"strings"
	"testing"
)

// TestDrive lets ready run once the workload says so, then starts it and
// reads its result; a workload that says no result is an error, and so is
// a ready that fails, before the workload is started.
func TestDrive(t *testing.T) {
	var in strings.Builder
	readyPid := 0
	ns, err := drive(strings.NewReader("warming up\nready\nns_per_op=12.5\n"), &in, 42, func(pid int) error { readyPid = pid; return nil })
	if err != nil || ns != 12.5 || readyPid != 42 || in.String() != "go\n" {
		t.Errorf("drive = %v, %v; ready for pid %d; wrote %q", ns, err, readyPid, in.String())
	}
	if _, err := drive(strings.NewReader("ready\n"), &strings.Builder{}, 1, nil); err == nil {
		t.Error("no ns_per_op: no error")
	}
	in.Reset()
	failed := errors.New("attach")
	if _, err := drive(strings.NewReader("ready\nns_per_op=1\n"), &in, 1, func(int) error { return failed }); !errors.Is(err, failed) || in.Len() != 0 {
		t.Errorf("failed ready: %v, wrote %q", err, in.String())
	}
}

func TestLastLine(t *testing.T) {
	for s, want := range map[string]string{"": "", "one": "one", "a\nb\n": "b", "a\nb\n\n": "b"} {
		if got := LastLine(s); got != want {
			t.Errorf("LastLine(%q) = %q, want %q", s, got, want)
		}
	}
}
