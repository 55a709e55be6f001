package tracer

import (
	"testing"
	"time"
)

// A minimum age longer than the host has been up leaves no allocation old
// enough, instead of wrapping around to count every one.
func TestLeakCutoffBeforeBoot(t *testing.T) {
	cutoff, err := leakCutoff(100 * 365 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cutoff != 0 {
		t.Errorf("cutoff for an age older than the host = %d, want 0", cutoff)
	}
	recent, err := leakCutoff(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if recent == 0 {
		t.Error("cutoff for 1ms = 0, want the time 1ms ago")
	}
}
