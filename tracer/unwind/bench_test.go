package unwind

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// rowBytes is the size of struct unwind_row in the kernel's maps.
const rowBytes = 12

// BenchmarkBuildLibc measures building the tables of libc, libstdc++ and
// python3 from their bytes in memory, and reports their rows and the bytes
// those take in the kernel's map (the rows and the header).
func BenchmarkBuildLibc(b *testing.B) {
	py, _ := filepath.EvalSymlinks("/usr/bin/python3")
	for _, path := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", py} {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Skipf("needs %s: %v", path, err)
		}
		b.Run(filepath.Base(path), func(b *testing.B) {
			var rows int
			for b.Loop() {
				tab, err := Build(bytes.NewReader(data), Limits{})
				if err != nil {
					b.Fatal(err)
				}
				rows = len(tab.Rows)
			}
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(rows+1)*rowBytes, "map-bytes") // the rows and the header
		})
	}
}
