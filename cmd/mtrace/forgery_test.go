package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestForgedBuildID performs the forged build-id attack. A root-owned
// library (testdata/compute.c) sits in a root-owned directory, and an
// untraced root victim calls it in a loop, checking every result. An
// unprivileged attacker copies it (same build-id) and adds to the copy's
// symbol table malloc and free pointing into the middle of compute's
// instructions, then, in the cgroup mtrace traces, maps the forged copy
// and afterwards the real library. mtrace must plan probes for each file
// from that file alone: the real file, which defines no malloc, gets no
// probe, so the victim never computes a wrong result. (A host-wide mtrace
// of an older build running meanwhile falls for the attack too: the failure
// names the processes holding uprobes on the library.)
func TestForgedBuildID(t *testing.T) {
	tracertest.RequireBPF(t)
	for _, tool := range []string{"setpriv", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	shared := sharedDir(t, 0, 0)
	lib := installFile(t, tracertest.BuildC(t, "compute.c", "-shared", "-fPIC", "-Wl,--build-id"), shared, "libcompute.so")
	mapper := installFile(t, tracertest.BuildC(t, "mapper.c", "-ldl"), shared, "mapper")
	mallocAt, freeAt := midInstructions(t, lib)

	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	attacker := sharedDir(t, uid, gid)
	forged := filepath.Join(attacker, "forged.so")
	forge := fmt.Sprintf(`cp "$1" "$2" && objcopy --add-symbol malloc=.text:%#x,function,global --add-symbol free=.text:%#x,function,global "$2"`, mallocAt, freeAt)
	if out, err := asNobody(t, "sh", "-c", forge, "sh", lib, forged).CombinedOutput(); err != nil {
		t.Fatalf("forge %s: %v\n%s", lib, err, out)
	}

	victim := startCommand(t, exec.Command(mapper, "--check", lib), "ready")
	// The attacker maps the real file, then the forged copy below it, and
	// is in the cgroup when mtrace starts: mtrace reads the mappings of the
	// cgroup's members in address order, the forged copy first, before it
	// says it has attached.
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-%s-%d", t.Name(), os.Getpid())))
	attack := startCommand(t, inCgroup(t, cg, asNobody(t, mapper, lib, forged)), "mapped")
	if mappedAt(t, attack.cmd.Process.Pid, forged) > mappedAt(t, attack.cmd.Process.Pid, lib) {
		t.Fatal("the forged copy is mapped above the real file: mtrace would read the real file first")
	}
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--cgroup", cg, "--log-level", "debug", "--format", "json", "--output", out)
	attack.release(t)
	victim.stdin.Write([]byte("go\n"))
	err = victim.cmd.Wait()
	if said := victim.out.String(); err != nil || !strings.HasPrefix(said, "ready\nok ") {
		t.Errorf("the victim, never traced, saw its library's code change (%v): %q; processes with uprobes on the library: %s", err, said, probing(lib))
	}
	b.stop(t)

	if !strings.Contains(b.stderr.String(), "module="+forged+" ") {
		t.Errorf("mtrace did not look at the forged copy: %s", b.stderr.String())
	}
	for _, line := range strings.Split(b.stderr.String(), "\n") {
		if strings.Contains(line, "module="+lib+" ") {
			t.Errorf("mtrace probed the real library from its forged copy: %s", line)
		}
	}
	readReport(t, out)
}

// sharedDir makes a directory owned by uid and gid that everyone can read
// and search (t.TempDir's are root's alone), removed at the end of the test.
func sharedDir(t *testing.T, uid, gid int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mtrace-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// installFile copies the file src into dir as name, mode 0755, and returns its path.
func installFile(t *testing.T, src, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// midInstructions returns, as offsets into .text, the first two bytes 0x90
// of compute in lib: each lies inside one of its instructions.
func midInstructions(t *testing.T, lib string) (uint64, uint64) {
	t.Helper()
	f, err := elf.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	text := f.Section(".text")
	for _, s := range syms {
		if s.Name != "compute" {
			continue
		}
		code := make([]byte, s.Size)
		if _, err := text.ReadAt(code, int64(s.Value-text.Addr)); err != nil {
			t.Fatal(err)
		}
		first := bytes.IndexByte(code, 0x90)
		second := first + 1 + bytes.IndexByte(code[first+1:], 0x90)
		if first <= 0 || second <= first {
			t.Fatalf("compute has no two bytes 0x90 inside its instructions: % x", code)
		}
		return s.Value - text.Addr + uint64(first), s.Value - text.Addr + uint64(second)
	}
	t.Fatalf("no symbol compute in %s", lib)
	return 0, 0
}

// mappedAt returns the lowest address where process pid maps the file at path.
func mappedAt(t *testing.T, pid int, path string) uint64 {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if strings.HasSuffix(line, " "+path) {
			start, _, _ := strings.Cut(line, "-")
			addr, err := strconv.ParseUint(start, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return addr
		}
	}
	t.Fatalf("process %d does not map %s", pid, path)
	return 0
}

// probing lists the processes that hold uprobe links on the file at path
// (this test's own mtrace, or another mtrace on the host): what wrote
// breakpoints into it.
func probing(path string) string {
	var found []string
	fdinfos, _ := filepath.Glob("/proc/[0-9]*/fdinfo/*")
	for _, fdinfo := range fdinfos {
		data, err := os.ReadFile(fdinfo)
		if err != nil || !bytes.Contains(data, []byte("path:\t"+path+"\n")) && !bytes.Contains(data, []byte("path:\t"+path+" (deleted)\n")) {
			continue
		}
		pid := strings.Split(fdinfo, "/")[2]
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		found = append(found, fmt.Sprintf("%s (%s)", pid, strings.TrimSpace(string(comm))))
	}
	return fmt.Sprint(found)
}
