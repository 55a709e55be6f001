package kernel

import "testing"

// TestPretended reads the names of MTRACE_PRETEND_MISSING one by one: an
// empty name, or a name's prefix, pretends nothing.
func TestPretended(t *testing.T) {
	t.Setenv(PretendMissingEnv, "btf,,uprobe_session")
	for name, want := range map[string]bool{"btf": true, "uprobe_session": true, "uprobe": false, "": false, "kernel": false} {
		if got := Pretended(name); got != want {
			t.Errorf("Pretended(%q) = %v, want %v", name, got, want)
		}
	}
	t.Setenv(PretendMissingEnv, "")
	if Pretended("btf") {
		t.Error("Pretended(btf) with the switch unset")
	}
}

// TestAtLeast compares with the running kernel's own version.
func TestAtLeast(t *testing.T) {
	major, minor, _, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		major, minor int
		want         bool
	}{
		{major, minor, true}, {major, minor + 1, false}, {major - 1, minor + 1, true}, {major + 1, 0, false},
	} {
		if at, known := AtLeast(tc.major, tc.minor); at != tc.want || !known {
			t.Errorf("AtLeast(%d, %d) on %d.%d = %v, %v", tc.major, tc.minor, major, minor, at, known)
		}
	}
}
