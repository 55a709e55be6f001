package hostcheck

import (
	"slices"
	"testing"

	"github.com/mtrace/mtrace/internal/kernel"
)

// TestRunPretendsMissing: a check MTRACE_PRETEND_MISSING names fails as if
// its feature were absent, whatever the host has, and the others keep
// their order, the order mtrace check prints.
func TestRunPretendsMissing(t *testing.T) {
	t.Setenv(kernel.PretendMissingEnv, "btf,lockdown")
	var names []string
	for _, c := range Run("/proc", nil, false) {
		names = append(names, c.Name)
		if (c.Name == "btf" || c.Name == "lockdown") && (c.OK || c.Detail != "pretended missing" || !c.Required) {
			t.Errorf("%s: %+v, want a required check pretended missing", c.Name, c)
		}
	}
	want := []string{"kernel", "cap_bpf", "cap_perfmon", "cap_sys_ptrace", "cap_sys_admin", "btf", "uprobes", "ringbuf",
		"uprobe_multi", "uprobe_session", "lockdown", "perf_event_paranoid", "cgroup2"}
	if !slices.Equal(names, want) {
		t.Errorf("checks %v, want %v", names, want)
	}
}
