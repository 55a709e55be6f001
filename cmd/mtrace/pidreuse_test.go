package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestPidReuse runs one program, then makes a different program take its pid
// (through /proc/sys/kernel/ns_last_pid) while mtrace traces the host. The
// report must hold the two as separate images, each with exactly its own
// allocations and stacks: the second inherits nothing of the first.
func TestPidReuse(t *testing.T) {
	tracertest.RequireBPF(t)
	allocs, cxx := tracertest.BuildC(t, "allocs.c"), tracertest.BuildC(t, "cxx.cc")
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--all", "--format", "json", "--output", out)
	first := runTarget(t, allocs)
	var pid int
	for p := range parseTallies(t, first) {
		pid = p
	}
	second := runWithPid(t, pid, cxx)
	b.stop(t)
	r := readReport(t, out)
	checkTallies(t, imagesOf(r, pid, allocs), first, expect{bin: allocs, callees: allocsProgram})
	checkTallies(t, imagesOf(r, pid, cxx), second, expect{bin: cxx, callees: cxxProgram})
	for _, pair := range [][2]string{{allocs, cxx}, {cxx, allocs}} {
		for _, p := range imagesOf(r, pid, pair[0]).Processes {
			for _, s := range p.Stacks {
				for _, f := range s.Frames {
					if f.Module == pair[1] {
						t.Errorf("pid %d's image of %s has a stack through %s: %v", pid, pair[0], pair[1], s.Frames)
					}
				}
			}
		}
	}
}

// runWithPid runs name as process pid, which must be free: it sets the
// kernel's last pid just below and starts the program, again if another
// process took the pid first. It returns what the program printed.
func runWithPid(t *testing.T, pid int, name string) string {
	t.Helper()
	for try := 0; try < 50; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot choose the next pid: %v", err)
		}
		cmd := exec.Command(name)
		data, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cmd.Process.Pid == pid {
			return string(data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("could not start a process with pid %d", pid)
	return ""
}

// imagesOf is r with only the images of pid whose executable is exe.
func imagesOf(r *sink.Report, pid int, exe string) *sink.Report {
	only := *r
	only.Processes = nil
	for _, p := range r.Processes {
		if p.Pid == pid && p.Exe == exe {
			only.Processes = append(only.Processes, p)
		}
	}
	return &only
}
