package tracer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/tracer/aggregate"
)

var (
	opAlloc = uint8(bpf.AllocOpOP_ALLOC)
	opFree  = uint8(bpf.AllocOpOP_FREE)
)

func TestIdentifyReadsArgv0Only(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "77")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"cmdline": "/usr/bin/app\x00--password\x00hunter2\x00",
		"cgroup":  "0::/system.slice/app.service\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/usr/bin/app", filepath.Join(dir, "exe")); err != nil {
		t.Fatal(err)
	}
	p := identify(filepath.Dir(dir), 77)
	if p.exe != "/usr/bin/app" || p.argv0 != "/usr/bin/app" || p.cgroup != "/system.slice/app.service" {
		t.Fatalf("identified exe %q argv0 %q cgroup %q", p.exe, p.argv0, p.cgroup)
	}
}

func TestReadArgv0(t *testing.T) {
	// stat gives a process's argv region as arg_start (field 48) and arg_end (49).
	stat := func(region int) string {
		fields := make([]string, 52)
		for i := range fields {
			fields[i] = "0"
		}
		fields[0], fields[1], fields[47], fields[48] = "77", "(a) b)", "1000", strconv.Itoa(1000+region)
		return strings.Join(fields, " ") + "\n"
	}
	for _, tc := range []struct {
		cmdline string
		region  int // 0: the stat file is unreadable
		want    string
	}{
		{"/usr/bin/app\x00-v\x00", 16, "/usr/bin/app"},
		{"/usr/bin/my app\x00-v\x00", 19, "/usr/bin/my app"},
		{"nginx: worker process\x00\x00\x00", 24, "nginx: worker process"}, // a title padded with NULs
		// A title rewritten over argv and environ, its NULs gone: the kernel
		// reads it on past the argv region.
		{"app --token=s3cret PASSWORD=hunter2\x00", 19, "app"},
		{"app --token=s3cret\x00", 19, "app"}, // the NULs between the arguments are gone
		{"/usr/bin/app\x00", 13, "/usr/bin/app"},
		{"/usr/bin/app -v\x00", 0, "/usr/bin/app"}, // no region known
		{"", 0, ""}, // a kernel thread, or a process that is gone
	} {
		dir := t.TempDir()
		cmdline, statFile := filepath.Join(dir, "cmdline"), filepath.Join(dir, "stat")
		if err := os.WriteFile(cmdline, []byte(tc.cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
		if tc.region > 0 {
			if err := os.WriteFile(statFile, []byte(stat(tc.region)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := readArgv0(cmdline, statFile); got != tc.want {
			t.Errorf("cmdline %q, region %d: argv0 %q, want %q", tc.cmdline, tc.region, got, tc.want)
		}
	}
	if got := readArgRegion("/proc/self/stat"); got <= 0 {
		t.Errorf("argv region of this process: %d", got)
	}
}

func TestReadCgroupPrefersUnitPathOnHybridHosts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cgroup")
	os.WriteFile(path, []byte("9:name=systemd:/system.slice/db.service\n4:memory:/x\n0::/\n"), 0o644)
	if got := readCgroup(path); got != "/system.slice/db.service" {
		t.Fatalf("cgroup %q", got)
	}
}

// TestReadStatusReadsEveryUID: a set-user-ID root program started by
// nobody that set its effective uid back to nobody's still has saved uid 0;
// the policy sees all four uids, and an unreadable one as unknown.
func TestReadStatusReadsEveryUID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	for _, tc := range []struct {
		line string
		want policy.UIDs
	}{
		{"Uid:\t65534\t65534\t0\t65534", policy.UIDs{65534, 65534, 0, 65534}},
		{"Uid:\t65534\tx\t0\t65534", policy.UIDs{65534, -1, 0, 65534}},
		{"Uid:\t65534\t0", policy.OneUID(-1)},
	} {
		os.WriteFile(path, []byte("Name:\tx\n"+tc.line+"\nSeccomp:\t0\n"), 0o644)
		if uids, sandboxed := readStatus(path); uids != tc.want || sandboxed {
			t.Errorf("%q: uids %v, sandboxed %v; want %v, false", tc.line, uids, sandboxed, tc.want)
		}
	}
}

// BenchmarkDecodeAndAdd measures the consumer's work per ring-buffer record:
// decoding it and adding it to its stack's counts.
func BenchmarkDecodeAndAdd(b *testing.B) {
	agg := aggregate.New(aggregate.Config{})
	agg.Start(1, aggregate.Names{}, false)
	recs := make([][]byte, 64)
	for i := range recs {
		op := opAlloc
		if i%2 == 1 {
			op = opFree
		}
		recs[i] = encode(b, bpf.AllocAllocEvent{Hdr: bpf.AllocEventHeader{Op: op, Tgid: 1}, Stack: uint64(i % 8), Size: 32})
	}
	var e record
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		decodeRecord(recs[i%len(recs)], &e)
		agg.Add(allocEvent(&e))
	}
}
