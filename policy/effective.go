package policy

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"filippo.io/age"
)

// Overrides are what the command line says on top of a policy: each may
// only narrow what the policy allows.
type Overrides struct {
	// Command names the command in errors: "record".
	Command string
	// MaxEventsPerSecond and MaxCPUPercent, if not nil, lower the policy's
	// limits (--max-events-per-second, --max-cpu-percent).
	MaxEventsPerSecond *uint64
	MaxCPUPercent      *float64
	// Duration is how long to trace (--duration); 0 for max_duration.
	Duration time.Duration

	// Report says that the run writes a report (mtrace record); the fields
	// below are for such a run.
	Report bool
	// Output is the report's file (--output); "" for stdout, unless
	// OutputDir or the policy names a directory.
	Output string
	// OutputDir is a directory the report is named in (--output-dir).
	OutputDir string
	// ReportName is the name a report gets in a directory: mtrace-TIME.FORMAT.
	ReportName string
	// Keep is how many reports a directory keeps (--keep); 0 for all.
	Keep int
	// EncryptTo are age recipients the report is encrypted to, on top of
	// the policy's (--encrypt-to).
	EncryptTo []string
	// MetricsListen is the address metrics are served on; "" for none.
	MetricsListen string
	// MetricsTextfile is the file metrics are written to at the end; "" for none.
	MetricsTextfile string
}

// Effective is a policy with the command line's overrides applied and
// checked: all that the tracer and the writers of one run obey. Only
// Resolve makes one.
type Effective struct {
	// Limits are the policy's limits, lowered by the overrides.
	Limits Limits
	// Duration is how long the run traces: at most Limits.MaxDuration.
	Duration time.Duration
	// Report is the report's file, its Path "" for stdout.
	Report File
	// MetricsTextfile is the metrics textfile, its Path "" for none.
	MetricsTextfile File
	// MetricsListen is the address metrics are served on; "" for none.
	MetricsListen string

	scope *Policy // judges targets
}

// File is a file a run writes and the rules it is written under.
type File struct {
	// Path is where the file goes; "" for none.
	Path string
	// Directory, if set, is the only directory the file may be in: the
	// policy's output.directory.
	Directory string
	// Recipients are the age recipients the file is encrypted to, if any.
	Recipients []age.Recipient
	// MaxBytes bounds what is written, before encryption: max_output_bytes.
	MaxBytes int64
	// Keep, if positive, is how many reports the file's directory keeps
	// once it is written: the smaller of --keep and output.retention, for
	// a report named in a directory.
	Keep int
}

// Resolve applies the overrides o to the policy p, which it does not
// change, and checks them. Every error is a mistake in how mtrace was asked
// to run, in one line.
func Resolve(p *Policy, o Overrides) (*Effective, error) {
	e := &Effective{Limits: p.Limits, scope: p, MetricsListen: o.MetricsListen}
	l := &e.Limits
	if o.MaxEventsPerSecond != nil {
		if n := *o.MaxEventsPerSecond; n == 0 || n > l.MaxEventsPerSecond {
			return nil, fmt.Errorf("%s: --max-events-per-second %d: want 1 to %d (the policy's limit)", o.Command, n, l.MaxEventsPerSecond)
		}
		l.MaxEventsPerSecond = *o.MaxEventsPerSecond
	}
	if o.MaxCPUPercent != nil {
		if c := *o.MaxCPUPercent; c <= 0 || c > l.MaxCPUPercent {
			return nil, fmt.Errorf("%s: --max-cpu-percent %v: want more than 0 and at most %v (the policy's limit)", o.Command, c, l.MaxCPUPercent)
		}
		l.MaxCPUPercent = *o.MaxCPUPercent
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if o.Duration > l.MaxDuration {
		return nil, fmt.Errorf("%s: --duration %v is longer than the policy allows (%v)", o.Command, o.Duration, l.MaxDuration)
	}
	e.Duration = o.Duration
	if e.Duration == 0 {
		e.Duration = l.MaxDuration
	}
	if !o.Report {
		return e, nil
	}
	if err := e.resolveOutputs(p, o); err != nil {
		return nil, err
	}
	return e, nil
}

// resolveOutputs decides where the report and the metrics go and under
// which rules.
func (e *Effective) resolveOutputs(p *Policy, o Overrides) error {
	recipients, err := p.Recipients(o.EncryptTo)
	if err != nil {
		return err
	}
	e.Report = File{Path: o.Output, Directory: p.Output.Directory, Recipients: recipients, MaxBytes: e.Limits.MaxOutputBytes}
	dir := o.OutputDir
	if dir == "" {
		dir = p.Output.Directory
	}
	if dir != "" {
		if e.Report.Path == "" {
			e.Report.Path = filepath.Join(dir, o.ReportName)
		}
		e.Report.Keep = o.Keep
		if r := p.Output.Retention; r > 0 && (o.Keep == 0 || r < o.Keep) {
			e.Report.Keep = r
		}
	}
	if len(recipients) > 0 && e.Report.Path == "" {
		return fmt.Errorf("%s: an encrypted report needs --output FILE", o.Command)
	}
	if o.MetricsListen != "" {
		if err := p.checkListen(o.Command, o.MetricsListen); err != nil {
			return err
		}
	}
	if o.MetricsTextfile != "" {
		if len(p.Output.EncryptTo) > 0 {
			return fmt.Errorf("%s: refuse --metrics-textfile: the policy encrypts every output (output.encrypt_to), and node_exporter cannot read an encrypted file; use --metrics-listen", o.Command)
		}
		e.MetricsTextfile = File{Path: o.MetricsTextfile, Directory: p.Output.Directory, MaxBytes: e.Limits.MaxOutputBytes}
	}
	return nil
}

// checkListen refuses a listening address that is not loopback, unless the
// policy allows public metrics.
func (p *Policy) checkListen(command, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: --metrics-listen %q: %w", command, addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) || p.Output.PublicMetrics {
		return nil
	}
	return fmt.Errorf("%s: refuse to listen on %s: not a loopback address (a policy may allow it with output.public_metrics)", command, addr)
}

// Check returns nil if the policy allows tracing t, as Policy.Check does.
func (e *Effective) Check(t Target) error { return e.scope.Check(t) }

// MayDeny reports whether the policy may deny some process, as Policy.MayDeny does.
func (e *Effective) MayDeny() bool { return e.scope.MayDeny() }

// Place returns the directory the file is to be opened in, and its name
// there, refusing a path outside f's Directory.
func (f File) Place() (dir, name string, err error) {
	path := f.Path
	dir = filepath.Dir(path)
	if f.Directory != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", "", fmt.Errorf("resolve %s: %w", path, err)
		}
		if filepath.Dir(abs) != filepath.Clean(f.Directory) {
			return "", "", fmt.Errorf("refuse to write %s: the policy allows outputs in %s only", path, f.Directory)
		}
		dir = f.Directory
	}
	return dir, filepath.Base(path), nil
}
