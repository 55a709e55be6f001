package sink

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/mtrace/mtrace/policy"
)

// TestOutputKeepsEveryRule writes reports through Outputs: outside the
// policy's directory is refused before anything is written; inside, a
// report is 0600, encrypted to the recipients, kept as it was when the next
// one is too large, and the older reports are pruned to the number kept.
func TestOutputKeepsEveryRule(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenOutput(policy.File{Path: filepath.Join(t.TempDir(), "r.json"), Directory: dir, MaxBytes: 10}, nil); err == nil ||
		!strings.Contains(err.Error(), "the policy allows outputs in "+dir+" only") {
		t.Errorf("a file outside the policy's directory: %v, want a refusal", err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	old := []string{ReportName(time.Unix(1, 0), "json"), ReportName(time.Unix(2, 0), "json")}
	for _, name := range old {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	name := ReportName(time.Unix(3, 0), "json")
	f := policy.File{Path: filepath.Join(dir, name), Directory: dir, Recipients: []age.Recipient{id.Recipient()}, MaxBytes: 10, Keep: 2}
	o, err := OpenOutput(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if !o.Encrypted() || o.Path() != f.Path || o.SwitchesUser() {
		t.Errorf("output %s, encrypted %v, switches user %v", o.Path(), o.Encrypted(), o.SwitchesUser())
	}
	if err := o.Write(writeString("{}")); err != nil {
		t.Fatal(err)
	}
	if err := o.Write(writeString("more than ten bytes")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a report over the limit: %v, want ErrTooLarge", err)
	}
	if err := o.Fits(writeString("0123456789")); err != nil {
		t.Errorf("a report of the limit does not fit: %v", err)
	}
	data, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		t.Fatalf("decrypt the report: %v", err)
	}
	if got, _ := ReadAtMost(plain, 100, 0, "report"); string(got) != "{}" {
		t.Errorf("the report holds %q, want the first one", got)
	}
	if st, err := os.Stat(f.Path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("report mode %v, %v; want 0600", st.Mode(), err)
	}
	if err := o.Prune(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 || entries[0].Name() != old[1] || entries[1].Name() != name {
		t.Errorf("after pruning to 2: %v, want %s and %s", entries, old[1], name)
	}
}

// TestStreamOutputWritesAllOrNothing: a report over the limit never
// reaches the stream; one within it does.
func TestStreamOutputWritesAllOrNothing(t *testing.T) {
	var b bytes.Buffer
	o := StreamOutput(&b, policy.File{MaxBytes: 4})
	if err := o.Write(writeString("too long")); !errors.Is(err, ErrTooLarge) || b.Len() != 0 {
		t.Errorf("a report over the limit: %v, and %q written; want ErrTooLarge and nothing", err, b.String())
	}
	if err := o.Write(writeString("fits")); err != nil || b.String() != "fits" {
		t.Errorf("a report within the limit: %v, %q written", err, b.String())
	}
	if o.Path() != "" || o.Prune() != nil || o.Close() != nil {
		t.Errorf("a stream has path %q, or fails to prune or close", o.Path())
	}
}
