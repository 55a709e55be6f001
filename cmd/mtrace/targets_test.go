package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

var cxxProgram = map[string]string{
	"make_objects":     "operator new(unsigned long)",
	"make_arrays":      "operator new[](unsigned long)",
	"make_nothrow":     "operator new(unsigned long, std::nothrow_t const&)",
	"make_aligned":     "operator new",
	"make_after_throw": "operator new(unsigned long)",
}

const libDir = "/usr/lib/x86_64-linux-gnu"

// recordJSON runs mtrace record with args and a JSON output, and returns the
// report and the target's stdout.
func recordJSON(t *testing.T, args ...string) (*sink.Report, string) {
	t.Helper()
	r, res := recordRun(t, nil, args...)
	return r, res.stdout
}

// recordRun is recordJSON with the command's stdin (nil: none), returning
// the whole run; the run must succeed.
func recordRun(t *testing.T, stdin *os.File, args ...string) (*sink.Report, mtraceRun) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	res := runMtrace(context.Background(), stdin, append([]string{"record", "--format", "json", "--output", out}, args...)...)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	return readReport(t, out), res
}

// TestRecordCxx counts every form of operator new once, attributed to the
// C++ caller, not again for the malloc inside it, with uprobe sessions and
// with return probes. The program catches a std::bad_alloc from each
// throwing form, which a return probe on operator new would turn into
// std::terminate, sees the nothrow forms fail, and then allocates from
// deeper frames.
func TestRecordCxx(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "cxx.cc")
	for _, missing := range []string{"", "uprobe_session"} {
		t.Run("missing="+missing, func(t *testing.T) {
			t.Setenv("MTRACE_PRETEND_MISSING", missing)
			r, out := recordJSON(t, "--", bin)
			if !strings.Contains(out, "7 of 7 forms of operator new failed") {
				t.Errorf("the program's output:\n%s", out)
			}
			checkTallies(t, r, out, expect{bin: bin, callees: cxxProgram, allocator: requireFile(t, libDir+"/libstdc++.so.6")})
			for _, p := range r.Processes {
				for _, s := range p.Stacks {
					if len(s.Frames) > 1 && (strings.HasPrefix(s.Frames[1].Function, "_Zn") || strings.HasPrefix(s.Frames[1].Function, "operator new")) {
						t.Errorf("allocation counted inside operator new: %+v", s)
					}
				}
			}
		})
	}
}

// TestThrowingNewUnderAllocators runs the C++ program under allocators
// whose operator new allocates by itself: mtrace leaves those unprobed and
// says so, the program survives its caught std::bad_alloc, and the forms
// that hand their calls to a probed function are still counted exactly.
func TestThrowingNewUnderAllocators(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "cxx.cc")
	nothrow := map[string]string{"make_nothrow": cxxProgram["make_nothrow"]}
	for lib, callees := range map[string]map[string]string{
		"libjemalloc.so.2":         {"make_nothrow": cxxProgram["make_nothrow"], "make_aligned": cxxProgram["make_aligned"]},
		"libtcmalloc.so.4":         nothrow,
		"libtcmalloc_minimal.so.4": nothrow,
	} {
		t.Run(lib, func(t *testing.T) {
			path := requireFile(t, filepath.Join(libDir, lib))
			// Preloaded into the command itself, the allocator is mapped before mtrace lets it run.
			t.Setenv("LD_PRELOAD", path)
			r, res := recordRun(t, nil, "--", bin)
			if !strings.Contains(res.stderr, `msg="not probing operator new that allocates by itself`) || !strings.Contains(res.stderr, "module="+path) {
				t.Errorf("no warning that %s's operator new is not probed:\n%s", lib, res.stderr)
			}
			checkTallies(t, r, res.stdout, expect{bin: bin, callees: callees, allocator: path})
		})
	}
}

func TestRecordStatic(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c", "-static")
	r, out := recordJSON(t, "--", bin)
	checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram, allocator: bin})
	if len(r.Processes) != 1 || r.Processes[0].Allocator != bin {
		t.Errorf("allocator of the static program: %+v", r.Processes)
	}
}

// TestRecordAllocators traces the same program under each packaged allocator,
// chosen with LD_PRELOAD through env, which mtrace follows through its exec.
func TestRecordAllocators(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	for _, lib := range []string{"libjemalloc.so.2", "libtcmalloc.so.4", "libtcmalloc_minimal.so.4", "libmimalloc.so.2"} {
		t.Run(lib, func(t *testing.T) {
			path := requireFile(t, filepath.Join(libDir, lib))
			r, out := recordJSON(t, "--", "env", "LD_PRELOAD="+path, bin)
			checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram, allocator: path})
		})
	}
}

func TestRecordFollowForks(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	r, out := recordJSON(t, "--", bin, "--fork-exec")
	if n := len(parseTallies(t, out)); n != 3 {
		t.Fatalf("%d processes tallied, want 3 (child, exec'd child, parent)", n)
	}
	checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram})
}

// TestRecordAll starts targets after mtrace attached to the whole host, one
// of them through an allocator no process had loaded. A static executable
// new to mtrace is attached at its exec, so it waits for that before it
// allocates.
func TestRecordAll(t *testing.T) {
	tracertest.RequireBPF(t)
	allocs, static, cxx := tracertest.BuildC(t, "allocs.c"), tracertest.BuildC(t, "allocs.c", "-static"), tracertest.BuildC(t, "cxx.cc")
	tcmalloc := requireFile(t, filepath.Join(libDir, "libtcmalloc_minimal.so.4"))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--all", "--log-level", "debug", "--format", "json", "--output", out)
	outputs := map[string]string{
		"allocs":   runTarget(t, allocs),
		"tcmalloc": runTarget(t, "env", "LD_PRELOAD="+tcmalloc, allocs),
		"cxx":      runTarget(t, cxx),
	}
	target := startWaiting(t, static, "--wait")
	waitFor(t, &b.stderr, `msg="probes attached" module=`+static, b.done)
	outputs["static"] = target.release(t)
	b.stop(t)
	r := readReport(t, out)
	checkTallies(t, r, outputs["allocs"], expect{bin: allocs, callees: allocsProgram})
	checkTallies(t, r, outputs["tcmalloc"], expect{bin: allocs, callees: allocsProgram, allocator: tcmalloc})
	checkTallies(t, r, outputs["static"], expect{bin: static, callees: allocsProgram, allocator: static})
	checkTallies(t, r, outputs["cxx"], expect{bin: cxx, callees: cxxProgram})
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 2 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	t.Skip("no cgroup v2 hierarchy mounted")
	return ""
}

// makeCgroup creates a cgroup directory, removed at the end of the test.
func makeCgroup(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path); os.Remove(filepath.Dir(path)) })
	return path
}

// runInCgroup runs target inside cgroup from its first instruction and
// returns what it printed.
func runInCgroup(t *testing.T, cgroup, target string) string {
	t.Helper()
	dir, err := os.Open(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// Started in the cgroup directly (clone3): no other image runs there first.
	cmd := exec.Command(target)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	return string(out)
}

// TestRecordUnit traces a unit's cgroup, made by the test the way systemd
// lays it out, and a process that starts in it after mtrace attached.
func TestRecordUnit(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	unit := fmt.Sprintf("mtrace-test-%d", os.Getpid())
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", unit+".service"))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--unit", unit, "--format", "json", "--output", out)
	targetOut := runInCgroup(t, cg, bin)
	b.stop(t)
	r := readReport(t, out)
	checkTallies(t, r, targetOut, expect{bin: bin, callees: allocsProgram})
	for pid := range parseTallies(t, targetOut) {
		for _, p := range r.Processes {
			if p.Pid == pid && p.Exe == bin && p.Cgroup != "/mtrace-test.slice/"+unit+".service" {
				t.Errorf("pid %d reported in cgroup %q", pid, p.Cgroup)
			}
		}
	}
	if _, err := exec.LookPath("systemd-run"); err == nil {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			t.Log("systemd is running: also tracing a systemd-run scope")
			scope := unit + "-scope"
			b := startMtrace(t, "record", "--unit", scope+".scope", "--format", "json", "--output", out)
			scopeOut := runTarget(t, "systemd-run", "--quiet", "--scope", "--unit", scope, bin)
			b.stop(t)
			checkTallies(t, readReport(t, out), scopeOut, expect{bin: bin, callees: allocsProgram})
		}
	}
}

// TestRecordCgroupV1 traces a cgroup of a v1 hierarchy through its members:
// one there before mtrace attached, and the children it forks later.
func TestRecordCgroupV1(t *testing.T) {
	tracertest.RequireBPF(t)
	root := "/sys/fs/cgroup/systemd"
	if fi, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil || fi.IsDir() {
		t.Skip("no cgroup v1 name=systemd hierarchy")
	}
	bin := tracertest.BuildC(t, "allocs.c")
	cg := makeCgroup(t, filepath.Join(root, "mtrace-test.slice", fmt.Sprintf("mtrace-v1-%d", os.Getpid())))
	// It joins the cgroup, says ready, and once released forks and execs.
	target := startWaiting(t, "sh", "-c", fmt.Sprintf(`echo $$ > %s/cgroup.procs && echo ready && read line && %s --fork-exec`, cg, bin))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--cgroup", cg, "--format", "json", "--output", out)
	targetOut := target.release(t)
	b.stop(t)
	checkTallies(t, readReport(t, out), targetOut, expect{bin: bin, callees: allocsProgram})
}

// glibcTrace counts the allocations (+, and > for realloc's new block) and
// frees (-, and < for realloc's old block) of an mtrace(3) trace file.
func glibcTrace(t *testing.T, path string) (allocs, allocBytes, frees uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text()) // @ CALLER OP ADDR [SIZE]
		if len(fields) < 4 || fields[0] != "@" {
			continue
		}
		switch fields[2] {
		case "+", ">":
			var size uint64
			if len(fields) < 5 {
				t.Fatalf("trace line without size: %q", sc.Text())
			}
			fmt.Sscanf(fields[4], "0x%x", &size)
			allocs++
			allocBytes += size
		case "-", "<":
			frees++
		}
	}
	return allocs, allocBytes, frees
}

// TestRecordPythonAgainstGlibcTrace traces an unmodified system program and
// compares its counts with glibc's own trace of the same run. The one
// difference is explained: mtrace(3) opens its trace file (one FILE
// allocation) before it starts tracing, and mtrace sees that allocation.
func TestRecordPythonAgainstGlibcTrace(t *testing.T) {
	tracertest.RequireBPF(t)
	python := requireFile(t, "/usr/bin/python3")
	debug := requireFile(t, filepath.Join(libDir, "libc_malloc_debug.so.0"))
	on := tracertest.BuildC(t, "mtrace_on.c", "-shared", "-fPIC")
	trace := filepath.Join(commandDir(t), "trace.txt")
	workload := `import json; d = {str(i): [i] * 3 for i in range(2000)}; print(len(json.loads(json.dumps(d))))`
	r, _ := recordJSON(t, "--", "env", "LD_PRELOAD="+debug+" "+on, "MALLOC_TRACE="+trace, "PYTHONHASHSEED=0", python, "-c", workload)

	var proc *sink.Process
	for i := range r.Processes {
		if r.Processes[i].Exe == python {
			proc = &r.Processes[i]
		}
	}
	if proc == nil {
		t.Fatalf("no %s in the report", python)
	}
	allocs, allocBytes, frees := glibcTrace(t, trace)
	if allocs < 1000 {
		t.Fatalf("glibc traced only %d allocations", allocs)
	}
	got := proc.Totals
	t.Logf("lost %d, dropped %+v, allocators %v", r.LostEvents, r.Dropped, proc.Allocators)
	t.Logf("mtrace: %d allocs, %d bytes, %d frees; glibc trace: %d allocs, %d bytes, %d frees",
		got.Allocs, got.AllocBytes, got.Frees, allocs, allocBytes, frees)
	if got.Frees != frees {
		t.Errorf("mtrace saw %d frees, glibc traced %d", got.Frees, frees)
	}
	if got.Allocs != allocs+1 {
		t.Fatalf("mtrace saw %d allocations, glibc traced %d: want exactly one more (mtrace(3)'s own FILE)", got.Allocs, allocs)
	}
	extra := got.AllocBytes - allocBytes
	found := false
	for _, s := range proc.Stacks {
		found = found || (s.Allocs >= 1 && s.AllocBytes >= extra && s.Frames[0].Function == "malloc")
	}
	if !found || extra == 0 || extra > 4096 {
		t.Errorf("the extra allocation of %d bytes is not a FILE-sized malloc", extra)
	}
	// Every frame of python's stacks that has a symbol agrees with addr2line.
	n := checkAddr2line(t, &sink.Report{Processes: []sink.Process{*proc}}, nil)
	t.Logf("%d python3 locations agree with addr2line", n)
	if n < 10 {
		t.Errorf("only %d python3 locations checked", n)
	}
}

// TestRecordMmap counts anonymous mappings as their own kind. The direct
// caller of mmap is not in those stacks (the system-call wrapper keeps no
// frame), so the program's mappings are told apart by its module in them.
func TestRecordMmap(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	r, out := recordJSON(t, "--mmap", "--", bin, "--mmap")
	for pid, tallies := range parseTallies(t, out) {
		want := tallies["map_pages"]
		var got sink.Counts
		for _, p := range r.Processes {
			if p.Pid != pid {
				continue
			}
			for _, s := range p.Stacks {
				if s.Frames[0].Function != "mmap (anonymous)" {
					continue
				}
				for _, f := range s.Frames[1:] {
					if f.Module == bin {
						got.Add(s.Counts)
						break
					}
				}
			}
		}
		if got.Allocs != want.Allocs || got.AllocBytes != want.AllocBytes || got.Frees != want.Frees || got.FreeBytes != want.FreeBytes {
			t.Errorf("pid %d mappings: report %+v, program did %+v", pid, got, want)
		}
	}
	checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram})
}

// TestRecordPidsInOtherMountNamespace traces two running processes, one of
// which runs in its own mount namespace with a private copy of the C library
// over the host's path, as a container would: mtrace must probe the copy it
// really maps (through /proc/PID/map_files), not the host's file.
func TestRecordPidsInOtherMountNamespace(t *testing.T) {
	tracertest.RequireBPF(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	bin := tracertest.BuildC(t, "allocs.c")
	libc := requireFile(t, filepath.Join(libDir, "libc.so.6"))
	private := filepath.Join(t.TempDir(), "libc.so.6")
	if out, err := exec.Command("cp", libc, private).CombinedOutput(); err != nil {
		t.Fatalf("copy libc: %v %s", err, out)
	}
	host := startWaiting(t, bin, "--wait")
	contained := startWaiting(t, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		fmt.Sprintf("mount --bind %s %s && exec %s --wait", private, libc, bin))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--log-level", "debug", "--pid", host.pid(), "--pid", contained.pid(), "--format", "json", "--output", out)
	outs := []string{host.release(t), contained.release(t)}
	if code := <-b.done; code != 0 {
		t.Fatalf("exit %d: %s", code, b.stderr.String())
	}
	r := readReport(t, out)
	for _, o := range outs {
		checkTallies(t, r, o, expect{bin: bin, callees: allocsProgram, allocator: libc})
	}
	// Two files answer to the C library's path: the host's and the private copy.
	if n := strings.Count(b.stderr.String(), `msg="probes attached" module=`+libc+" "); n != 2 {
		t.Errorf("probes attached to %d files at %s, want 2:\n%s", n, libc, b.stderr.String())
	}
}

// TestRecordDlclose traces allocations made by a plugin loaded with dlopen,
// unloaded, and loaded again: counted exactly, and named after the plugin
// is gone.
func TestRecordDlclose(t *testing.T) {
	tracertest.RequireBPF(t)
	plugin := tracertest.BuildC(t, "plugin.c", "-shared", "-fPIC")
	bin := tracertest.BuildC(t, "dlopen.c", "-ldl")
	r, out := recordJSON(t, "--", bin, plugin)
	checkTallies(t, r, out, expect{bin: plugin, exe: bin, callees: map[string]string{"plugin_alloc": "malloc"}})
}

// TestLibraryReplacedOnDisk replaces a plugin's file while the plugin is
// loaded (renamed over: the old file stays mapped, deleted), lets the old
// plugin allocate again, then loads the new file. Each allocation is
// counted exactly and never named after a file that did not make it. When
// the replacement comes after mtrace read the old file, the old file's
// functions keep their names; when it comes at once, mtrace may find the
// old file gone before it looks, and then names its frames by the path the
// kernel gave, marked unreadable, and their offsets.
func TestLibraryReplacedOnDisk(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "dlopen.c", "-ldl")
	for _, pause := range []string{"300", "0"} {
		t.Run("pause "+pause+"ms", func(t *testing.T) {
			dir := commandDir(t)
			plugin, replacement := filepath.Join(dir, "plugin.so"), filepath.Join(dir, "plugin-new.so")
			for dst, flags := range map[string][]string{plugin: nil, replacement: {"-Dplugin_alloc=plugin_alloc_v2"}} {
				built := tracertest.BuildC(t, "plugin.c", append([]string{"-shared", "-fPIC"}, flags...)...)
				if err := os.Rename(built, dst); err != nil {
					t.Fatal(err)
				}
			}
			r, out := recordJSON(t, "--", bin, plugin, replacement, pause)
			if !strings.Contains(out, " plugin_alloc allocs=40 ") || !strings.Contains(out, " plugin_alloc_v2 allocs=20 ") {
				t.Fatalf("the program did not allocate through both files:\n%s", out)
			}
			if pause != "0" {
				checkTallies(t, r, out, expect{bin: plugin, exe: bin, callees: map[string]string{"plugin_alloc": "malloc", "plugin_alloc_v2": "malloc"}})
				return
			}
			checkTallies(t, r, out, expect{bin: plugin, exe: bin, callees: map[string]string{"plugin_alloc_v2": "malloc"}})
			var old uint64
			for _, p := range r.Processes {
				for _, s := range p.Stacks {
					if len(s.Frames) < 2 || s.Frames[0].Function != "malloc" {
						continue
					}
					caller := s.Frames[1]
					if caller.Function == "plugin_alloc" || caller.Module == plugin+" (unreadable)" {
						old += s.Allocs
					}
				}
			}
			if old != 40 {
				t.Errorf("%d allocations through the replaced file, named or marked unreadable, want 40", old)
			}
		})
	}
}

// TestLoadingLibrariesKeepsStacks loads 40 libraries one after another,
// none unloaded, allocating from the same function after each, under a
// stack map of 64 entries: loading code must not make the stacks already
// seen hash anew (only unloading it does), or the map would fill.
func TestLoadingLibrariesKeepsStacks(t *testing.T) {
	tracertest.RequireBPF(t)
	plugin := tracertest.BuildC(t, "plugin.c", "-shared", "-fPIC")
	data, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{tracertest.BuildC(t, "loadlibs.c", "-ldl")}
	for i := range 40 {
		lib := filepath.Join(dir, fmt.Sprintf("lib%d.so", i))
		if err := os.WriteFile(lib, data, 0o755); err != nil {
			t.Fatal(err)
		}
		args = append(args, lib)
	}
	pol := writeFile(t, "policy.toml", "[limits]\nmax_stacks = 64\n")
	r, out := recordJSON(t, append([]string{"--policy", pol, "--"}, args...)...)
	if r.Dropped.StackMapFull != 0 {
		t.Errorf("the stack map filled %d times", r.Dropped.StackMapFull)
	}
	checkTallies(t, r, out, expect{bin: args[0], callees: map[string]string{"steady": "malloc"}})
}

// TestGoTargets traces Go programs. One allocates through C (cgo) from
// goroutines whose stacks grow and move: it keeps running, and its C
// allocations are counted exactly, with Go callers in their stacks. The
// other is pure Go and happens to define functions named malloc and free:
// mtrace must not probe Go code (a return probe would corrupt the moving
// stacks and crash it), so it runs to the end, and mtrace says what it
// left out.
func TestGoTargets(t *testing.T) {
	tracertest.RequireBPF(t)
	t.Run("cgo", func(t *testing.T) {
		bin := tracertest.BuildGo(t, "gocgo.go")
		r, out := recordJSON(t, "--", bin)
		tallied := parseTallies(t, out)
		if len(tallied) != 1 {
			t.Fatalf("%d processes tallied, want 1: %s", len(tallied), out)
		}
		for pid, tallies := range tallied {
			var got sink.Counts
			for _, p := range r.Processes {
				for _, s := range p.Stacks {
					if p.Pid == pid && slices.ContainsFunc(s.Frames, func(f sink.Frame) bool { return f.Function == "main._Cfunc_alloc_block" }) {
						got.Add(s.Counts)
					}
				}
			}
			want := tallies["alloc_block"]
			if got.Allocs != want.Allocs || got.AllocBytes != want.AllocBytes || got.Frees != want.Frees || got.FreeBytes != want.FreeBytes {
				t.Errorf("pid %d: allocations through C from Go: %+v, the program made %+v", pid, got, want)
			}
		}
	})
	t.Run("malloc in Go code", func(t *testing.T) {
		bin := tracertest.BuildGo(t, "gomalloc.go")
		res := runMtrace(t.Context(), nil, "record", "--format", "json", "--output", filepath.Join(t.TempDir(), "r.json"), "--", bin)
		if res.code != 0 || !strings.Contains(res.stdout, "done") {
			t.Fatalf("exit %d, the program said %q: %s", res.code, res.stdout, res.stderr)
		}
		if !strings.Contains(res.stderr, "not probing Go code") || !strings.Contains(res.stderr, `functions="malloc free"`) {
			t.Errorf("mtrace did not say it left malloc and free out:\n%s", res.stderr)
		}
	})
}
