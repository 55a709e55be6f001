package unwind

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tinyELF builds the smallest real executable of testdata, with its
// .eh_frame, for fuzz seeds.
func tinyELF(f *testing.F) []byte {
	f.Helper()
	bin := filepath.Join(f.TempDir(), "noalloc")
	if out, err := exec.Command("gcc", "-O2", "-static", "-nostdlib", "-fomit-frame-pointer", "-fasynchronous-unwind-tables", "-o", bin, "../../testdata/noalloc.c").CombinedOutput(); err != nil {
		f.Skipf("build seed: %v %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzBuild feeds arbitrary bytes to Build: an error or a table, never a
// panic; the table within its limits, its rows sorted by strictly
// increasing offsets.
func FuzzBuild(f *testing.F) {
	f.Add(tinyELF(f))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	l := Limits{MaxRows: 1 << 16, MaxSectionBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Build(bytes.NewReader(data), l)
		if (tab == nil) == (err == nil) {
			t.Fatalf("table %v and error %v", tab, err)
		}
		if tab == nil {
			return
		}
		if len(tab.Rows) > l.MaxRows {
			t.Fatalf("%d rows over the limit %d", len(tab.Rows), l.MaxRows)
		}
		for i := 1; i < len(tab.Rows); i++ {
			if tab.Rows[i-1].Offset >= tab.Rows[i].Offset {
				t.Fatalf("rows %d and %d out of order: %+v, %+v", i-1, i, tab.Rows[i-1], tab.Rows[i])
			}
		}
	})
}
