package unwind

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// realFiles are the files the oracle checks: distribution libraries and a
// program no one in the project wrote, and a testdata program built as
// distributions build, without frame pointers.
func realFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6"}
	if py, err := filepath.EvalSymlinks("/usr/bin/python3"); err == nil {
		files = append(files, py)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s: %v", f, err)
		}
	}
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Skip("needs readelf")
	}
	return append(files,
		tracertest.BuildC(t, "allocs.c", "-fomit-frame-pointer", "-fasynchronous-unwind-tables"),
		tracertest.BuildC(t, "inline.cc", "-fomit-frame-pointer", "-fasynchronous-unwind-tables"),
		tracertest.BuildGo(t, "gomalloc.go"), // .debug_frame only, compressed
	)
}

func build(t *testing.T, path string) *Table {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Build(f, Limits{})
	if err != nil {
		t.Fatalf("build %s: %v", path, err)
	}
	return tab
}

// lookup returns the row that covers file offset off.
func lookup(rows []Row, off uint32) Row {
	i := sort.Search(len(rows), func(i int) bool { return rows[i].Offset > off })
	if i == 0 {
		return Row{}
	}
	return rows[i-1]
}

// oracleRow is one row of readelf's interpreted CFI, at a file offset.
type oracleRow struct {
	off, next uint32 // the row covers [off, next)
	cfa       string // as readelf prints it: rsp+8, rbp+16, exp
	rbp, ra   string // c-16, u, s, exp, ..., "" when not mentioned
}

// readelfRows parses `readelf --debug-dump=frames-interp` of the section
// source of path, with addresses converted to file offsets.
func readelfRows(t *testing.T, path, source string) []oracleRow {
	t.Helper()
	// readelf exits 1 on files it has nothing to say about in other
	// sections (libc's), after printing the frames.
	out, err := exec.Command("readelf", "--wide", "--debug-dump=frames-interp", path).Output()
	if len(out) == 0 {
		t.Fatalf("readelf %s: %v", path, err)
	}
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	code, err := codeSegments(ef)
	if err != nil {
		t.Fatal(err)
	}
	var (
		rows         []oracleRow
		inSection    bool
		cols         []string
		begin, end   uint64
		fdeRows      []oracleRow
		fdeOK        bool
		fdeBeginFile uint32
		flush        func()
		cie, fdeCIE  string                   // the CIE being read, the CIE of the FDE being read
		cieRows      = map[string]oracleRow{} // each CIE's row, by its offset
		hexNum       = func(s string) uint64 { v, _ := strconv.ParseUint(s, 16, 64); return v }
	)
	flush = func() {
		if cie != "" && len(fdeRows) > 0 {
			cieRows[cie] = fdeRows[0]
		}
		if r, ok := cieRows[fdeCIE]; fdeOK && len(fdeRows) == 0 && ok {
			// readelf prints no rows for an FDE without instructions:
			// its CIE's row covers it.
			r.off = uint32(begin)
			fdeRows = []oracleRow{r}
		}
		if fdeOK {
			for i, r := range fdeRows {
				next := end
				if i+1 < len(fdeRows) {
					next = uint64(fdeRows[i+1].off)
				}
				if next <= uint64(r.off) {
					continue // replaced by a row at the same address (Go's last row)
				}
				r.next = uint32(next-begin) + fdeBeginFile
				r.off = uint32(uint64(r.off)-begin) + fdeBeginFile
				rows = append(rows, r)
			}
		}
		fdeRows, fdeOK, cols, cie, fdeCIE = nil, false, nil, "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Contents of the ") {
			flush()
			inSection = strings.Contains(line, " "+source+" ")
			continue
		}
		if !inSection {
			continue
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 4 && fields[3] == "CIE":
			flush()
			cie, begin, end = fields[0], 0, 1 // its row is at location 0
		case len(fields) >= 5 && fields[3] == "FDE":
			flush()
			fdeCIE = strings.TrimPrefix(fields[4], "cie=")
			pc := fields[len(fields)-1]
			lo, hi, _ := strings.Cut(strings.TrimPrefix(pc, "pc="), "..")
			begin, end = hexNum(lo), hexNum(hi)
			fdeBeginFile, _, fdeOK = fileRange(code, begin, end)
		case len(fields) > 2 && fields[0] == "LOC":
			cols = fields
		case cols != nil && len(fields) >= len(cols):
			r := oracleRow{off: uint32(hexNum(fields[0])), cfa: fields[1], rbp: "?", ra: "?"}
			// A register rule prints as two fields ("r9 (r9)"): the
			// columns are then not told apart, and the row not compared.
			if len(fields) == len(cols) {
				r.rbp, r.ra = "", ""
				for i, c := range cols {
					switch c {
					case "rbp":
						r.rbp = fields[i]
					case "ra":
						r.ra = fields[i]
					}
				}
			}
			if uint64(r.off) >= begin && uint64(r.off) < end {
				fdeRows = append(fdeRows, r) // its offset is rebased in flush
			}
		}
	}
	flush()
	return rows
}

// expect says the row readelf's row means, and whether it is one that rows
// must agree on exactly (a CFA of rsp+N or rbp+N, or an undefined ra).
func (o oracleRow) expect() (Row, bool) {
	if o.ra == "u" {
		return Row{CFA: RuleEnd}, true
	}
	reg, n, ok := strings.Cut(o.cfa, "+")
	if !ok || o.ra != "c-8" {
		return Row{}, false
	}
	off, err := strconv.ParseInt(n, 10, 32)
	if err != nil {
		return Row{}, false
	}
	r := Row{CFAOffset: int32(off)}
	switch reg {
	case "rsp":
		r.CFA = RuleRSP
	case "rbp":
		r.CFA = RuleRBP
	default:
		return Row{}, true // another register: None
	}
	switch {
	case o.rbp == "" || o.rbp == "u" || o.rbp == "s":
	case strings.HasPrefix(o.rbp, "c"):
		v, err := strconv.ParseInt(o.rbp[1:], 10, 16)
		if err != nil {
			return Row{}, true
		}
		r.RBPOffset = int16(v)
	default:
		return Row{}, true // a rule rows cannot say
	}
	return r, true
}

// TestOracleReadelf compares the rows of real files with readelf's
// interpretation of the same CFI, at the first and last byte of every row
// readelf prints.
func TestOracleReadelf(t *testing.T) {
	for _, path := range realFiles(t) {
		tab := build(t, path)
		oracle := readelfRows(t, path, tab.Source)
		if len(oracle) < 10 {
			t.Fatalf("%s: readelf gave only %d rows", path, len(oracle))
		}
		var compared, agreed, skipped int
		for _, o := range oracle {
			want, ok := o.expect()
			if !ok {
				skipped++
				continue
			}
			for _, off := range []uint32{o.off, o.next - 1} {
				got := lookup(tab.Rows, off)
				got.Offset = 0
				compared++
				if got == want {
					agreed++
				} else if compared-agreed <= 10 {
					t.Errorf("%s: at %#x readelf says CFA %s rbp %q ra %q, got %+v", path, off, o.cfa, o.rbp, o.ra, got)
				}
			}
		}
		t.Logf("%s (%s): %d rows; %d of %d readelf rows' ends agree (%d readelf rows not compared: other rules)", path, tab.Source, len(tab.Rows), agreed, compared, skipped)
		if compared == 0 || agreed != compared {
			t.Errorf("%s: %d of %d agree", path, agreed, compared)
		}
	}
}

// TestRowsSorted checks the table's shape on real files: sorted, strictly
// increasing offsets, no two adjacent rows alike.
func TestRowsSorted(t *testing.T) {
	for _, path := range realFiles(t) {
		checkShape(t, build(t, path))
	}
}

func checkShape(t *testing.T, tab *Table) {
	t.Helper()
	for i := 1; i < len(tab.Rows); i++ {
		a, b := tab.Rows[i-1], tab.Rows[i]
		if a.Offset >= b.Offset || sameRule(a, b) {
			t.Fatalf("rows %d and %d: %+v then %+v", i-1, i, a, b)
		}
	}
}
