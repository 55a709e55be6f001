package policy

import (
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// TestResolveLowersLimits: overrides may lower a limit, never raise it or
// zero it, and the duration is at most max_duration, which 0 stands for.
func TestResolveLowersLimits(t *testing.T) {
	p := Default()
	p.Limits.MaxDuration = time.Minute
	events, cpu := uint64(1000), 10.0
	e, err := Resolve(p, Overrides{Command: "record", MaxEventsPerSecond: &events, MaxCPUPercent: &cpu})
	if err != nil {
		t.Fatal(err)
	}
	if e.Limits.MaxEventsPerSecond != 1000 || e.Limits.MaxCPUPercent != 10 || e.Duration != time.Minute {
		t.Errorf("limits %+v, duration %v; want 1000 events/s, 10%% CPU, 1m", e.Limits, e.Duration)
	}
	if p.Limits.MaxEventsPerSecond != DefaultLimits().MaxEventsPerSecond {
		t.Errorf("Resolve changed the policy: %+v", p.Limits)
	}
	if e, err := Resolve(p, Overrides{Command: "top", Duration: time.Second}); err != nil || e.Duration != time.Second {
		t.Errorf("--duration 1s: %v, %v", e, err)
	}
	more, zero, over := p.Limits.MaxEventsPerSecond+1, uint64(0), 51.0
	for _, tc := range []struct {
		o    Overrides
		want string
	}{
		{Overrides{Command: "record", MaxEventsPerSecond: &more}, "record: --max-events-per-second 500001: want 1 to 500000 (the policy's limit)"},
		{Overrides{Command: "record", MaxEventsPerSecond: &zero}, "record: --max-events-per-second 0: want 1 to 500000"},
		{Overrides{Command: "top", MaxCPUPercent: &over}, "top: --max-cpu-percent 51: want more than 0 and at most 50 (the policy's limit)"},
		{Overrides{Command: "record", Duration: 2 * time.Minute}, "record: --duration 2m0s is longer than the policy allows (1m0s)"},
	} {
		if _, err := Resolve(p, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%+v): %v, want %q", tc.o, err, tc.want)
		}
	}
}

// TestResolveOutputs: where the report goes, what it keeps and is
// encrypted to, and the refusals of outputs the policy does not allow.
func TestResolveOutputs(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recipient := id.Recipient().String()
	report := func(p *Policy, o Overrides) (*Effective, error) {
		o.Command, o.Report, o.ReportName = "record", true, "mtrace-NOW.json"
		return Resolve(p, o)
	}

	e, err := report(Default(), Overrides{})
	if err != nil || e.Report.Path != "" || e.Report.Keep != 0 || e.MetricsTextfile.Path != "" {
		t.Errorf("no output: %+v, %v; want stdout", e, err)
	}
	if e, err := Resolve(&Policy{Limits: DefaultLimits(), Output: Output{EncryptTo: []string{recipient}}}, Overrides{Command: "top"}); err != nil || e.Report.Path != "" {
		t.Errorf("top under an encrypting policy: %+v, %v; want no report and no refusal", e, err)
	}

	dir := &Policy{Limits: DefaultLimits(), Output: Output{Directory: "/var/lib/mtrace", Retention: 5}}
	for _, tc := range []struct {
		o        Overrides
		path     string
		keep     int
		maxBytes int64
	}{
		{Overrides{}, "/var/lib/mtrace/mtrace-NOW.json", 5, dir.Limits.MaxOutputBytes},
		{Overrides{OutputDir: "/srv/r", Keep: 3}, "/srv/r/mtrace-NOW.json", 3, dir.Limits.MaxOutputBytes},
		{Overrides{OutputDir: "/srv/r", Keep: 9}, "/srv/r/mtrace-NOW.json", 5, dir.Limits.MaxOutputBytes},
		{Overrides{Output: "/var/lib/mtrace/r.json"}, "/var/lib/mtrace/r.json", 5, dir.Limits.MaxOutputBytes},
	} {
		e, err := report(dir, tc.o)
		if err != nil || e.Report.Path != tc.path || e.Report.Keep != tc.keep || e.Report.MaxBytes != tc.maxBytes || e.Report.Directory != "/var/lib/mtrace" {
			t.Errorf("%+v: report %+v, %v; want %s keeping %d", tc.o, e.Report, err, tc.path, tc.keep)
		}
	}

	enc := &Policy{Limits: DefaultLimits(), Output: Output{EncryptTo: []string{recipient}}}
	if e, err := report(enc, Overrides{Output: "r.json", EncryptTo: []string{recipient}}); err != nil || len(e.Report.Recipients) != 2 {
		t.Errorf("policy and --encrypt-to recipients: %+v, %v; want 2", e, err)
	}
	public := &Policy{Limits: DefaultLimits(), Output: Output{PublicMetrics: true}}
	if e, err := report(public, Overrides{MetricsListen: "0.0.0.0:9100"}); err != nil || e.MetricsListen != "0.0.0.0:9100" {
		t.Errorf("public metrics allowed: %+v, %v", e, err)
	}
	if e, err := report(dir, Overrides{MetricsTextfile: "/var/lib/mtrace/m.prom"}); err != nil ||
		e.MetricsTextfile.Path != "/var/lib/mtrace/m.prom" || e.MetricsTextfile.Directory != "/var/lib/mtrace" {
		t.Errorf("metrics textfile: %+v, %v", e, err)
	}
	for _, tc := range []struct {
		p    *Policy
		o    Overrides
		want string
	}{
		{Default(), Overrides{EncryptTo: []string{"nope"}}, `--encrypt-to "nope": not an age recipient`},
		{Default(), Overrides{EncryptTo: []string{recipient}}, "record: an encrypted report needs --output FILE"},
		{enc, Overrides{}, "record: an encrypted report needs --output FILE"},
		{Default(), Overrides{MetricsListen: "0.0.0.0:9100"}, "record: refuse to listen on 0.0.0.0:9100: not a loopback address"},
		{Default(), Overrides{MetricsListen: "9100"}, `record: --metrics-listen "9100": `},
		{enc, Overrides{Output: "r.json", MetricsTextfile: "m.prom"}, "record: refuse --metrics-textfile: the policy encrypts every output"},
	} {
		if _, err := report(tc.p, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v under %+v: %v, want %q", tc.o, tc.p.Output, err, tc.want)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:9100", "localhost:9100"} {
		if _, err := report(Default(), Overrides{MetricsListen: addr}); err != nil {
			t.Errorf("loopback %s: %v", addr, err)
		}
	}
}

// TestFilePlace: a file goes into its own directory, or under a policy
// directory only into that very one.
func TestFilePlace(t *testing.T) {
	if dir, name, err := (File{Path: "/tmp/a/r.json"}).Place(); err != nil || dir != "/tmp/a" || name != "r.json" {
		t.Errorf("no rule: %s, %s, %v", dir, name, err)
	}
	f := File{Path: "/var/lib/mtrace/./r.json", Directory: "/var/lib/mtrace/"}
	if dir, name, err := f.Place(); err != nil || dir != "/var/lib/mtrace/" || name != "r.json" {
		t.Errorf("in the policy's directory: %s, %s, %v", dir, name, err)
	}
	for _, path := range []string{"/tmp/r.json", "/var/lib/mtrace/sub/r.json", "/var/lib/r.json"} {
		want := "refuse to write " + path + ": the policy allows outputs in /var/lib/mtrace only"
		if _, _, err := (File{Path: path, Directory: "/var/lib/mtrace"}).Place(); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}
