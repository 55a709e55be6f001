// Package tracertest holds what the end-to-end tests of several packages
// share: the check that BPF tests can run here, and building the C and C++
// target programs in testdata/.
package tracertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
)

// RequireBPF skips the test where BPF programs cannot be loaded and attached
// (not root, no ring buffer, no uprobes), and fails it there instead when
// MTRACE_REQUIRE_BPF=1, as CI sets: a privileged test must really run.
func RequireBPF(t testing.TB) {
	t.Helper()
	err := bpfUsable()
	if err == nil {
		return
	}
	if os.Getenv("MTRACE_REQUIRE_BPF") == "1" {
		t.Fatalf("BPF tests must run here (MTRACE_REQUIRE_BPF=1): %v", err)
	}
	t.Skipf("needs root and BPF: %v", err)
}

func bpfUsable() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return err
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return fmt.Errorf("BPF ring buffer: %w", err)
	}
	if err := features.HaveProgramType(ebpf.Kprobe); err != nil {
		return fmt.Errorf("uprobe programs: %w", err)
	}
	if _, err := os.Stat("/sys/bus/event_source/devices/uprobe"); err != nil {
		return fmt.Errorf("uprobes: %w", err)
	}
	return nil
}

// BuildC compiles the testdata C or C++ program name the way the tests expect
// targets to be built: -O2, frame pointers on, debug info, and any extra
// flags. It returns the binary's path in a SharedDir.
func BuildC(t testing.TB, name string, flags ...string) string {
	t.Helper()
	compiler := "gcc"
	if filepath.Ext(name) == ".cc" {
		compiler = "g++"
	}
	bin := filepath.Join(SharedDir(t), strings.TrimSuffix(name, filepath.Ext(name)))
	args := append([]string{"-O2", "-g", "-fno-omit-frame-pointer", "-Wall", "-o", bin}, flags...)
	out, err := exec.Command(compiler, append(args, filepath.Join(testdata(), name))...).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// SharedDir returns a temporary directory, removed when the test ends, that
// every user may search: the programs built there run as the user a command
// of mtrace runs as (nobody, when root runs mtrace), or as a test's attacker.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir makes the directory and its parent, the test's, 0700.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// BuildGo builds the testdata Go program name (one file, package main) and
// returns the binary's path in a SharedDir.
func BuildGo(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(SharedDir(t), strings.TrimSuffix(name, ".go"))
	out, err := exec.Command("go", "build", "-o", bin, filepath.Join(testdata(), name)).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// testdata is the repository's testdata directory, found from this file.
func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}
