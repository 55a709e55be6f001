package recording

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer"
)

// Config is one recording: the effective policy it runs under, how its
// tracer is attached, how its report is written, and where it logs.
type Config struct {
	// Policy is the run's effective policy: the report's and the metrics'
	// files and the rules they are written under.
	Policy *policy.Effective
	// Start attaches the tracer, once the outputs are open. Its context
	// ends when tracing must (the duration, a signal); done releases what
	// Start made.
	Start func() (ctx context.Context, t *tracer.Tracer, done func(), err error)
	// Attached is called once the tracer is attached and the metrics
	// listener bound, before tracing goes on: the caller drops the
	// privileges it no longer needs there. switchesUser says whether an
	// output is written as another user (sink.Output.SwitchesUser).
	Attached func(switchesUser bool) error
	// Format returns the writer of a report in the format asked for.
	Format func(*sink.Report) func(io.Writer) error
	// User is the user mtrace works for (the sudo user), whose directories
	// outputs are written into as them; nil for none.
	User *syscall.Credential
	// Stdout is where a report without a file goes.
	Stdout io.Writer
	// Progress, if not nil, is a terminal that shows a line of progress.
	Progress io.Writer
	// Logger says what the recording does.
	Logger *slog.Logger
}

// recording is a run of Run.
type recording struct {
	cfg       Config
	log       *slog.Logger
	t         *tracer.Tracer
	rep, prom *sink.Output // the report (a file or Stdout) and the metrics textfile, if any
	emitting  sync.Mutex   // one report written at a time
}

// Run opens the outputs, attaches the tracer and traces until its context
// ends or its targets exit, serving metrics meanwhile if asked to and
// writing a report on each SIGHUP; then it writes the metrics textfile and
// the report, trimmed to fit max_output_bytes, and prunes the older reports.
// A report is written even when tracing stops on an error, which is
// returned with the report's.
func Run(cfg Config) error {
	r := &recording{cfg: cfg, log: cfg.Logger}
	if err := r.openOutputs(); err != nil {
		return err
	}
	defer r.rep.Close()
	defer r.prom.Close()

	start := time.Now()
	ctx, t, done, err := cfg.Start()
	if err != nil {
		return err
	}
	defer done()
	r.t = t
	metrics := sink.NewRegistry(t.Metrics)
	if addr := cfg.Policy.MetricsListen; addr != "" {
		stopMetrics, err := serveMetrics(addr, metrics, r.log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if err := cfg.Attached(r.rep.SwitchesUser() || r.prom.SwitchesUser()); err != nil {
		return err
	}
	r.log.Info("attached", "ms", time.Since(start).Milliseconds())

	stopProgress := func() {}
	if cfg.Progress != nil {
		progressCtx, cancel := context.WithCancel(ctx)
		wait := showProgress(progressCtx, cfg.Progress, t)
		stopProgress = func() { cancel(); wait() }
	}
	stopHangups := r.onHangup(ctx)
	defer stopHangups()

	report, runErr := t.Run(ctx)
	stopProgress()
	if r.prom != nil {
		if err := r.prom.Write(func(w io.Writer) error { return sink.WriteMetrics(w, metrics) }); err != nil {
			r.log.Warn("write metrics", "err", err)
		}
	}
	if report == nil {
		return runErr
	}
	if err := r.emit(report, true); err != nil {
		return errors.Join(runErr, err)
	}
	if err := r.rep.Prune(); err != nil {
		r.log.Warn("remove old reports", "err", err)
	}
	return errors.Join(runErr, t.Close())
}

// openOutputs opens the report's file, or else takes Stdout, and the
// metrics textfile, if any. They are opened now, before tracing, and only
// now: a directory of their paths renamed or swapped for a symlink while
// tracing changes nothing.
func (r *recording) openOutputs() (err error) {
	eff := r.cfg.Policy
	r.rep = sink.StreamOutput(r.cfg.Stdout, eff.Report)
	if eff.Report.Path != "" {
		if r.rep, err = sink.OpenOutput(eff.Report, r.cfg.User); err != nil {
			return err
		}
	}
	if eff.MetricsTextfile.Path != "" {
		if r.prom, err = sink.OpenOutput(eff.MetricsTextfile, r.cfg.User); err != nil {
			r.rep.Close()
			return err
		}
	}
	return nil
}

// onHangup writes, on each SIGHUP until ctx ends, an intermediate report
// (for long runs under systemd) where the final one goes. stop stops
// listening for the signal.
func (r *recording) onHangup(ctx context.Context) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-hup:
				if report := r.t.Snapshot(ctx); report != nil {
					if err := r.emit(report, false); err != nil {
						r.log.Warn("write intermediate report", "err", err)
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { signal.Stop(hup) }
}

// emit writes report: the final one, or an intermediate one.
func (r *recording) emit(report *sink.Report, final bool) error {
	r.emitting.Lock()
	defer r.emitting.Unlock()
	log, rep := r.log, r.rep
	if final {
		logSummary(log, report, r.t.ProgramStats())
	}
	write := r.cfg.Format(report)
	trim := func() bool {
		if !fitReport(report, func() error { return rep.Fits(write) }) {
			return false
		}
		log.Warn("report over max_output_bytes: smaller stacks summed into "+sink.OtherStacks,
			"trimmed_stacks", report.TrimmedStacks, "max_output_bytes", r.cfg.Policy.Report.MaxBytes)
		return true
	}
	err := rep.Write(write)
	if errors.Is(err, sink.ErrTooLarge) && trim() {
		err = rep.Write(write)
	}
	if err != nil || rep.Path() == "" {
		return err
	}
	log.Info("report written", "path", rep.Path(), "encrypted", rep.Encrypted(), "final", final)
	return nil
}

// fitReport trims report until fits, which tells whether it fits the
// output limit, succeeds: each process keeps its largest stacks, half as
// many at each try, and the rest are summed into one. It reports whether
// it fits.
func fitReport(report *sink.Report, fits func() error) bool {
	for keep := report.MostStacks() / 2; keep > 0; keep /= 2 {
		report.Trim(keep)
		if err := fits(); !errors.Is(err, sink.ErrTooLarge) {
			return err == nil
		}
	}
	return false
}

// logSummary logs, at the end of a run, what the report holds that an
// admin must not miss, and what the BPF programs cost.
func logSummary(log *slog.Logger, report *sink.Report, programs []tracer.ProgramStats) {
	if report.LostEvents > 0 {
		log.Warn("events lost: the ring buffer was full", "lost", report.LostEvents, "allocations", report.LostAllocations)
	}
	if report.SampledOut > 0 {
		log.Warn("the event-rate limit was reached: counts are sampled estimates", "sampled_out", report.SampledOut)
	}
	for _, p := range programs {
		log.Info("BPF program run time", "program", p.Name, "sampled_runs", p.Runs, "ns_per_run", uint64(p.Runtime)/p.Runs)
	}
	if report.SkippedProcesses > 0 {
		log.Info("skipped processes the policy does not allow tracing", "count", report.SkippedProcesses)
	}
}
