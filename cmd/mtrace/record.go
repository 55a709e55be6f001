package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
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
	o := tr.over
	o.Report, o.Output, o.OutputDir, o.ReportName = true, c.String("output"), c.String("output-dir"), sink.ReportName(time.Now(), format)
	o.Keep, o.EncryptTo = c.Int("keep"), c.StringSlice("encrypt-to")
	o.MetricsListen, o.MetricsTextfile = c.String("metrics-listen"), c.String("metrics-textfile")
	if err := tr.resolve(o); err != nil {
		return err
	}
	log, eff, sym := tr.log, tr.cfg.Policy, tr.cfg.Symbolizer
	if format == "pprof" && eff.Report.Path == "" {
		return usagef("record: a pprof profile needs --output FILE")
	}
	// The output directories are opened now, and only now: a directory of
	// their paths renamed or swapped for a symlink while tracing changes
	// nothing.
	rep := sink.StreamOutput(c.App.Writer, eff.Report)
	if eff.Report.Path != "" {
		if rep, err = sink.OpenOutput(eff.Report, invokingUser()); err != nil {
			return err
		}
		defer rep.Close()
	}
	var prom *sink.Output
	if eff.MetricsTextfile.Path != "" {
		if prom, err = sink.OpenOutput(eff.MetricsTextfile, invokingUser()); err != nil {
			return err
		}
		defer prom.Close()
	}
	tr.cfg.Leaks, tr.cfg.LeakAge = c.Bool("leaks"), c.Duration("min-age")

	start := time.Now()
	ctx, t, done, err := tr.start(c)
	if err != nil {
		return err
	}
	defer done()
	metrics := sink.NewRegistry(metricsOf(t))
	if eff.MetricsListen != "" {
		stopMetrics, err := serveMetrics(eff.MetricsListen, metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if err := dropCapabilities(c, log, rep.SwitchesUser() || prom.SwitchesUser()); err != nil {
		return err
	}
	log.Info("attached", "ms", time.Since(start).Milliseconds())

	stopProgress := func() {}
	if isTerminal(c.App.ErrWriter) {
		progressCtx, cancel := context.WithCancel(ctx)
		wait := showProgress(progressCtx, c.App.ErrWriter, t)
		stopProgress = func() { cancel(); wait() }
	}
	// emit writes a report of res: the final one, or on SIGHUP an
	// intermediate one (for long runs under systemd) in the same place.
	var emitting sync.Mutex
	emit := func(res *tracer.Result, final bool) error {
		emitting.Lock()
		defer emitting.Unlock()
		report := buildReport(res, sym)
		if final {
			logSummary(log, report, res.Programs)
		}
		write := reportWriter(report, format, c.Int("top"))
		trim := func() bool {
			if !fitReport(report, func() error { return rep.Fits(write) }) {
				return false
			}
			log.Warn("report over max_output_bytes: smaller stacks summed into "+sink.OtherStacks,
				"trimmed_stacks", report.TrimmedStacks, "max_output_bytes", eff.Report.MaxBytes)
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
		if err := prom.Write(func(w io.Writer) error { return sink.WriteMetrics(w, metrics) }); err != nil {
			log.Warn("write metrics", "err", err)
		}
	}
	if res == nil {
		return runErr
	}
	if err := emit(res, true); err != nil {
		return errors.Join(runErr, err)
	}
	if err := rep.Prune(); err != nil {
		log.Warn("remove old reports", "err", err)
	}
	return errors.Join(runErr, t.Close())
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

// buildReport symbolizes the tracer's result into the report sinks write.
func buildReport(res *tracer.Result, sym *symbolize.Symbolizer) *sink.Report {
	r := &sink.Report{
		Schema:          sink.Schema,
		DurationSeconds: res.Duration.Seconds(),
		LostEvents:      res.Dropped.LostEvents,
		LostAllocations: res.Dropped.LostAllocs,
		Dropped: sink.Dropped{
			LiveMapFull:  res.Dropped.LiveFull,
			StackMapFull: res.Dropped.StacksFull,
			StackErrors:  res.Dropped.StackErrors,
			CallsFull:    res.Dropped.CallsFull,
			Malformed:    res.Dropped.Malformed,
			TargetsFull:  res.Dropped.TargetsFull,
			Unheard:      res.Dropped.Unheard,
		},
		SkippedProcesses:  res.Skipped,
		FoldedStacks:      res.FoldedStacks,
		SampledOut:        res.Dropped.SampledOut,
		SampleBytes:       res.SampleBytes,
		Unsampled:         res.Dropped.Unsampled,
		LeakMinAgeSeconds: res.LeakAge.Seconds(),
		AllocationEvents:  res.Allocs,
		Processes:         []sink.Process{},
	}
	frames := frameCache{sym: sym, byStack: make(map[string][]sink.Frame)}
	for _, p := range res.Processes {
		sp := sink.Process{Pid: p.Pid, Exe: p.Exe, Argv0: p.Argv0, Cgroup: p.Cgroup, Exited: p.Exited, FoldedProcesses: p.Folded,
			Allocators: p.Allocators, Stacks: []sink.Stack{}}
		if len(p.Allocators) > 0 {
			sp.Allocator = p.Allocators[0]
		}
		sp.SizeHistogram, sp.LifetimeHistogram = buckets(p.SizeHistogram), buckets(p.LifetimeHistogram)
		for _, pt := range p.Timeline {
			sp.Timeline = append(sp.Timeline, sink.Point{Seconds: pt.Seconds, LiveBytes: pt.LiveBytes})
		}
		for _, s := range p.Stacks {
			st := sink.Stack{
				Frames: frames.of(s),
				Counts: sink.Counts{
					Allocs: s.Allocs, AllocBytes: s.AllocBytes,
					Frees: s.Frees, FreeBytes: s.FreeBytes,
					LiveObjects: s.LiveObjects(), LiveBytes: s.LiveBytes(),
					LeakedObjects: s.LeakedObjects, LeakedBytes: s.LeakedBytes,
				},
			}
			sp.Totals.Add(st.Counts)
			sp.Stacks = append(sp.Stacks, st)
		}
		r.FoldedProcesses += p.Folded
		r.Processes = append(r.Processes, sp)
	}
	return r
}

// frameCache symbolizes each distinct stack once: the same stack in many
// processes shares one slice of frames, which no writer changes, so that a
// report's memory does not grow with its processes times their frames.
type frameCache struct {
	sym     *symbolize.Symbolizer
	byStack map[string][]sink.Frame
}

// of returns the frames of s: the allocation function, then its callers.
func (c frameCache) of(s tracer.Stack) []sink.Frame {
	if s.Other {
		return []sink.Frame{{Function: sink.OtherStacks}}
	}
	key := fmt.Appendf(nil, "%s\x00%s", s.Function, s.Module)
	for _, l := range s.Locations {
		key = fmt.Appendf(key, "\x00%v", l)
	}
	if frames, ok := c.byStack[string(key)]; ok {
		return frames
	}
	frames := []sink.Frame{{Function: s.Function, Module: s.Module}}
	for _, f := range c.sym.Frames(s.Locations) {
		frames = append(frames, sink.Frame(f))
	}
	c.byStack[string(key)] = frames
	return frames
}

// buckets keeps the non-empty buckets of a log2 histogram: bucket i holds
// values below 2^i.
func buckets(h [65]uint64) []sink.Bucket {
	var out []sink.Bucket
	for i, n := range h {
		if n > 0 {
			below := uint64(math.MaxUint64)
			if i < 64 {
				below = 1 << i
			}
			out = append(out, sink.Bucket{Below: below, Count: n})
		}
	}
	return out
}
