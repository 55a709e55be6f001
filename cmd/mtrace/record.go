package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer"
)

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:      "record",
		Usage:     "trace processes and write a report of their allocations",
		ArgsUsage: "[-- COMMAND [ARGS...]]",
		Description: `Traces the C and C++ allocation functions (malloc family, operator new and
delete) of the target processes, in glibc, libstdc++, jemalloc, tcmalloc,
mimalloc or a static executable, then writes a report of the allocations
per stack. Pid and command targets are traced until they exit, --duration
ends, or SIGINT/SIGTERM arrives; cgroups, units and --all until --duration
ends or a signal arrives. A command after -- is started and traced from its
first allocation; if tracing ends first, it gets SIGTERM.

Examples:
   mtrace record -- ./myprogram --its-flag
   mtrace record --pid 1234 --duration 30s
   mtrace record --unit nginx.service --duration 1m --format json --output nginx.json
   mtrace record --all --duration 10s`,
		Flags: append(traceFlags(),
			&cli.BoolFlag{Name: "leaks", Usage: "report, per stack, the allocations still live at the end and older than --min-age"},
			&cli.DurationFlag{Name: "min-age", Value: 30 * time.Second, Usage: "with --leaks, count live allocations older than `AGE` as leaked"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "report `FORMAT`: text, json, html, pprof (gzipped protobuf) or folded; without it, the --output extension decides (.json, .html, .pb.gz, .folded, else text)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the report to `FILE` (mode 0600) instead of stdout, in a directory that exists and is reached through no symlink; in a directory of the sudo user, as that user; should FILE be taken by a file mtrace may not replace, the report goes to FILE.mtrace-RANDOM and mtrace exits 1"},
			&cli.StringFlag{Name: "output-dir", Usage: "write the report into `DIR`, which must exist and be reached through no symlink, as mtrace-TIME.FORMAT, for timers"},
			&cli.IntFlag{Name: "keep", Usage: "with --output-dir, keep only the newest `N` reports there: only regular files of its writer (mtrace's user, or the sudo user in their directory) named mtrace-TIME.FORMAT count and are removed, never the report just written"},
			&cli.IntFlag{Name: "top", Value: 10, Usage: "show the top `N` stacks in the text report"},
			&cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics on `ADDR` (host:port; loopback unless the policy allows public_metrics; at most 16 connections, the oldest idle or slow one closed for a new one)"},
			&cli.StringFlag{Name: "metrics-textfile", Usage: "write Prometheus metrics to `FILE` at the end, for node_exporter's textfile collector (mode 0600; the same rules as --output; refused when the policy encrypts outputs)"},
			&cli.StringSliceFlag{Name: "encrypt-to", Usage: "encrypt the report to the age `RECIPIENT` (repeatable; needs --output)"},
		),
		Action: record,
	}
}

func record(c *cli.Context) error {
	tr, err := newTrace(c, "record")
	if err != nil {
		return err
	}
	if c.String("output") != "" && c.String("output-dir") != "" {
		return usagef("record: give --output or --output-dir, not both")
	}
	if c.Int("keep") < 0 || (c.IsSet("keep") && c.String("output-dir") == "") {
		return usagef("record: --keep N needs --output-dir and N >= 0")
	}
	if c.Int("top") < 1 || c.Duration("min-age") < 0 {
		return usagef("record: --min-age and --top must be positive")
	}
	format, err := formatFor(c.String("format"), c.String("output"))
	if err != nil {
		return err
	}
	log, pol := tr.log, tr.pol
	out, inDir := reportPath(c.String("output"), c.String("output-dir"), format, pol)
	if format == "pprof" && out == "" {
		return usagef("record: a pprof profile needs --output FILE")
	}
	recipients, err := pol.Recipients(c.StringSlice("encrypt-to"))
	if err != nil {
		return usageError{err}
	}
	if len(recipients) > 0 && out == "" {
		return usagef("record: an encrypted report needs --output FILE")
	}
	if addr := c.String("metrics-listen"); addr != "" {
		if err := checkMetricsAddress(addr, pol); err != nil {
			return err
		}
	}
	if c.String("metrics-textfile") != "" && len(pol.Output.EncryptTo) > 0 {
		return usagef("record: refuse --metrics-textfile: the policy encrypts every output (output.encrypt_to), and node_exporter cannot read an encrypted file; use --metrics-listen")
	}
	// The output directories are opened now, and only now: a directory of
	// their paths renamed or swapped for a symlink while tracing changes
	// nothing.
	var rep, prom *output
	if out != "" {
		if rep, err = openOutput(out, pol); err != nil {
			return err
		}
		defer rep.dir.Close()
	}
	if file := c.String("metrics-textfile"); file != "" {
		if prom, err = openOutput(file, pol); err != nil {
			return err
		}
		defer prom.dir.Close()
	}
	tr.cfg.Leaks, tr.cfg.LeakAge = c.Bool("leaks"), c.Duration("min-age")

	start := time.Now()
	ctx, t, done, err := tr.start(c)
	if err != nil {
		return err
	}
	defer done()
	metrics := sink.NewRegistry(t.Metrics)
	if addr := c.String("metrics-listen"); addr != "" {
		stopMetrics, err := serveMetrics(addr, metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if err := dropCapabilities(c, log, rep.switchesUser() || prom.switchesUser()); err != nil {
		return err
	}
	log.Info("attached", "ms", time.Since(start).Milliseconds())

	stopProgress := func() {}
	if isTerminal(c.App.ErrWriter) {
		progressCtx, cancel := context.WithCancel(ctx)
		wait := showProgress(progressCtx, c.App.ErrWriter, t)
		stopProgress = func() { cancel(); wait() }
	}
	// emit writes report: the final one, or on SIGHUP an intermediate one
	// (for long runs under systemd) in the same place.
	var emitting sync.Mutex
	emit := func(report *sink.Report, final bool) error {
		emitting.Lock()
		defer emitting.Unlock()
		if final {
			logSummary(log, report, t.ProgramStats())
		}
		write := sink.Limited(pol.Limits.MaxOutputBytes, reportWriter(report, format, c.Int("top")))
		trim := func() bool {
			if !fitReport(report, write) {
				return false
			}
			log.Warn("report over max_output_bytes: smaller stacks summed into "+sink.OtherStacks,
				"trimmed_stacks", report.TrimmedStacks, "max_output_bytes", pol.Limits.MaxOutputBytes)
			return true
		}
		if rep == nil {
			// What reaches stdout cannot be taken back: make sure it fits first.
			if err := write(io.Discard); errors.Is(err, sink.ErrTooLarge) && !trim() {
				return err
			}
			return write(c.App.Writer)
		}
		err := rep.dir.WriteFile(rep.name, sink.Encrypted(recipients, write))
		if errors.Is(err, sink.ErrTooLarge) && trim() {
			err = rep.dir.WriteFile(rep.name, sink.Encrypted(recipients, write))
		}
		if err != nil {
			return err
		}
		log.Info("report written", "path", rep.path(), "encrypted", len(recipients) > 0, "final", final)
		return nil
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				if res := t.Snapshot(ctx); res != nil {
					if err := emit(res, false); err != nil {
						log.Warn("write intermediate report", "err", err)
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	res, runErr := t.Run(ctx)
	stopProgress()
	if prom != nil {
		if err := prom.dir.WriteFile(prom.name, func(w io.Writer) error { return sink.WriteMetrics(w, metrics) }); err != nil {
			log.Warn("write metrics", "err", err)
		}
	}
	if res == nil {
		return runErr
	}
	if err := emit(res, true); err != nil {
		return errors.Join(runErr, err)
	}
	keep := c.Int("keep")
	if pol.Output.Retention > 0 && (keep == 0 || pol.Output.Retention < keep) {
		keep = pol.Output.Retention
	}
	if inDir && keep > 0 {
		if err := rep.dir.Prune(keep, rep.name); err != nil {
			log.Warn("remove old reports", "err", err)
		}
	}
	return errors.Join(runErr, t.Close())
}

// fitReport trims report until write, which writes it within the output
// limit, succeeds: each process keeps its largest stacks, half as many at
// each try, and the rest are summed into one. It reports whether it fits.
func fitReport(report *sink.Report, write func(io.Writer) error) bool {
	for keep := report.MostStacks() / 2; keep > 0; keep /= 2 {
		report.Trim(keep)
		if err := write(io.Discard); !errors.Is(err, sink.ErrTooLarge) {
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

// reportPath returns where the report goes: --output, or a new name in
// --output-dir or else the policy's directory, whose old reports are then
// pruned (inDir); "" for stdout.
func reportPath(out, dir, format string, pol *policy.Policy) (path string, inDir bool) {
	if dir == "" {
		dir = pol.Output.Directory
	}
	if out == "" && dir != "" {
		out = filepath.Join(dir, sink.ReportName(time.Now(), format))
	}
	return out, dir != ""
}
