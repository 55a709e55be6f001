package policy

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the policy parser: it must never panic,
// an error is one line, and a policy it accepts is valid.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[scope]\nallow_executables = [\"/usr/bin/*\"]\n[limits]\nmax_live = 16\n"))
	f.Add([]byte("[limits]\nmax_duration = \"1h\"\nmax_cpu_percent = 10.5\n[output]\ndirectory = \"/var/lib/mtrace\"\n"))
	f.Add([]byte("[scope]\nallow_users = [\"root\"]\ndeny_cgroups = [\"/system.slice/*\"]\ndefault_denylist = false\n"))
	f.Add([]byte("[limits]\nring_buffer_bytes = 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.toml", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			return
		}
		if err := p.validate(); err != nil {
			t.Errorf("accepted an invalid policy: %v", err)
		}
	})
}
