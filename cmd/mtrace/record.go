package main

import (
	"context"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/internal/recording"
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
	o := tr.over
	o.Report, o.Output, o.OutputDir, o.ReportName = true, c.String("output"), c.String("output-dir"), sink.ReportName(time.Now(), format)
	o.Keep, o.EncryptTo = c.Int("keep"), c.StringSlice("encrypt-to")
	o.MetricsListen, o.MetricsTextfile = c.String("metrics-listen"), c.String("metrics-textfile")
	if err := tr.resolve(o); err != nil {
		return err
	}
	if format == "pprof" && tr.cfg.Policy.Report.Path == "" {
		return usagef("record: a pprof profile needs --output FILE")
	}
	tr.cfg.Leaks, tr.cfg.LeakAge = c.Bool("leaks"), c.Duration("min-age")
	var progress io.Writer
	if isTerminal(c.App.ErrWriter) {
		progress = c.App.ErrWriter
	}
	return recording.Run(recording.Config{
		Policy:   tr.cfg.Policy,
		Start:    func() (context.Context, *tracer.Tracer, func(), error) { return tr.start(c) },
		Attached: func(asUser bool) error { return dropCapabilities(c, tr.log, asUser) },
		Format:   func(r *sink.Report) func(io.Writer) error { return sink.WriterFor(r, format, c.Int("top")) },
		User:     invokingUser(),
		Stdout:   c.App.Writer,
		Progress: progress,
		Logger:   tr.log,
	})
}
