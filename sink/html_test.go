package sink

import (
	"bytes"
	"strings"
	"testing"
)

// TestHTMLEscapesTargetNames: function and file names come from target
// binaries, which are untrusted; none may inject markup into the page.
func TestHTMLEscapesTargetNames(t *testing.T) {
	r := sampleReport()
	evil := `<script>alert("x")</script>`
	r.Processes[0].Exe = "/bin/" + evil
	r.Processes[0].Stacks[0].Frames[1].Function = evil
	r.Processes[0].SizeHistogram = []Bucket{{Below: 32, Count: 3}}
	r.Processes[0].Timeline = []Point{{Seconds: 1, LiveBytes: 10}}
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, evil) || strings.Count(page, "<script>") != 1 {
		t.Fatalf("a target name reached the page unescaped")
	}
	for _, want := range []string{`class="pt"`, `class="bar"`, `class="f"`, "&lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}
