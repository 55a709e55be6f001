package attach

import "testing"

// TestProbeIDs checks that probe id 0 is anonymous mmap before anything is
// attached, that an id no probe has is not found, and that Close is safe
// twice and on nil.
func TestProbeIDs(t *testing.T) {
	a := New(Config{})
	if fn, mod, ok := a.Probe(0); !ok || fn != "mmap (anonymous)" || mod != "[kernel]" {
		t.Errorf("Probe(0) = %q, %q, %v", fn, mod, ok)
	}
	if _, _, ok := a.Probe(1); ok {
		t.Error("Probe(1) found before any attach")
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := (*Attacher)(nil).Close(); err != nil {
		t.Error(err)
	}
}
