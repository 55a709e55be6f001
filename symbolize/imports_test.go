package symbolize

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestImportsAgreeWithReadelf reads the global offset table slots of this
// machine's libstdc++ and checks each against what readelf -r prints: the
// slot of every JUMP_SLOT and GLOB_DAT relocation names its symbol.
func TestImportsAgreeWithReadelf(t *testing.T) {
	const lib = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
	f, err := os.Open(lib)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	slots, err := Imports(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("readelf", "-rW", lib).Output()
	if err != nil {
		t.Fatalf("readelf: %v", err)
	}
	want := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !(strings.HasPrefix(fields[2], "R_X86_64_JUMP_SLO") || fields[2] == "R_X86_64_GLOB_DAT") {
			continue
		}
		off, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			t.Fatalf("readelf line %q: %v", sc.Text(), err)
		}
		name, _, _ := strings.Cut(fields[4], "@")
		want++
		if slots[off] != name {
			t.Errorf("slot %#x: %q, want %q", off, slots[off], name)
		}
	}
	if want == 0 || len(slots) != want {
		t.Errorf("%d slots, readelf lists %d", len(slots), want)
	}
	if _, err := Imports(bytes.NewReader([]byte("\x7fELF garbage"))); err == nil {
		t.Error("garbage read without an error")
	}
}
