package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/internal/sandbox"
	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/symbolize"
	"github.com/mtrace/mtrace/tracer"
)

// traceFlags are the flags of every command that traces: what to trace,
// within which policy and limits, and how to find symbols.
func traceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntSliceFlag{Name: "pid", Aliases: []string{"p"}, Usage: "trace the running process `PID` (repeatable)"},
		&cli.StringSliceFlag{Name: "cgroup", Usage: "trace the processes of the cgroup directory `PATH` and its descendants, now and later (repeatable)"},
		&cli.StringSliceFlag{Name: "unit", Usage: "trace the processes of the systemd unit `NAME` (NAME.service if no suffix; repeatable)"},
		&cli.BoolFlag{Name: "all", Usage: "trace every process on the host"},
		&cli.BoolFlag{Name: "follow-forks", Usage: "also trace children and exec'd programs of traced processes (default: on for a command, off for --pid)"},
		&cli.StringFlag{Name: "user", Usage: "run the command as `USER` (name or uid; default for root: the user who ran sudo (SUDO_UID), else nobody); only --user root gives it root's uid and capabilities, any other user gets no capabilities and no_new_privs"},
		&cli.BoolFlag{Name: "mmap", Usage: "also count anonymous mmap/munmap, as their own kind of allocation (off by default)"},
		&cli.Uint64Flag{Name: "sample-bytes", Usage: "sample allocations by size, one in `N` bytes on average: an allocation of S bytes is kept with chance 1-e^(-S/N) and weighted by its inverse, so counts are unbiased estimates; the others cost no stack walk and no event (off by default)"},
		&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Usage: "stop after `DURATION` (e.g. 10s); 0 traces until the targets exit (at most the policy's max_duration)"},
		&cli.StringFlag{Name: "policy", Usage: "trace within the policy `FILE` (TOML; see mtrace policy check); without one, the built-in deny list (by executable name) and default limits apply"},
		&cli.Uint64Flag{Name: "max-events-per-second", Usage: "trace at most `N` allocations a second at full fidelity, then sample (default from the policy: 500000; may only lower it)"},
		&cli.Float64Flag{Name: "max-cpu-percent", Usage: "keep mtrace, its BPF programs included, under `P` percent of one CPU: sample more, then stop (default from the policy: 50; may only lower it)"},
		&cli.StringSliceFlag{Name: "debug-dir", Usage: "also look for separate debug files (by build-id or debuglink) in `DIR` (repeatable; " + symbolize.DefaultDebugDir + " always)"},
		logLevelFlag(),
	}
}

// trace is a checked request to trace: the tracer's configuration, the
// policy it runs under and the trace flags' overrides of it, which resolve
// makes the tracer's effective policy.
type trace struct {
	log  *slog.Logger
	pol  *policy.Policy
	over policy.Overrides
	cfg  tracer.Config
}

// newTrace checks the trace flags of the command named cmd.
func newTrace(c *cli.Context, cmd string) (*trace, error) {
	pids, command, cgroups := c.IntSlice("pid"), c.Args().Slice(), c.StringSlice("cgroup")
	if len(pids) == 0 && len(command) == 0 && len(cgroups) == 0 && len(c.StringSlice("unit")) == 0 && !c.Bool("all") {
		return nil, usagef("%s: give --pid PID, --cgroup PATH, --unit NAME, --all or -- COMMAND", cmd)
	}
	if c.Bool("all") && (len(pids) > 0 || len(command) > 0 || len(cgroups) > 0 || len(c.StringSlice("unit")) > 0) {
		return nil, usagef("%s: --all traces every process; give no other target with it", cmd)
	}
	if c.IsSet("user") && len(command) == 0 {
		return nil, usagef("%s: --user is who a command runs as; give -- COMMAND", cmd)
	}
	var runAs *syscall.Credential
	if len(command) > 0 {
		var err error
		if runAs, err = commandUser(c.String("user")); err != nil {
			return nil, err
		}
	}
	if c.Duration("duration") < 0 {
		return nil, usagef("%s: --duration must be positive", cmd)
	}
	log, err := logger(c)
	if err != nil {
		return nil, err
	}
	pol := policy.Default()
	if file := c.String("policy"); file != "" {
		if pol, err = policy.Load(file); err != nil {
			return nil, err
		}
	}
	over := policy.Overrides{Command: cmd, Duration: c.Duration("duration")}
	if c.IsSet("max-events-per-second") {
		n := c.Uint64("max-events-per-second")
		over.MaxEventsPerSecond = &n
	}
	if c.IsSet("max-cpu-percent") {
		p := c.Float64("max-cpu-percent")
		over.MaxCPUPercent = &p
	}
	if n := c.Uint64("sample-bytes"); c.IsSet("sample-bytes") && (n == 0 || n > tracer.MaxSampleBytes) {
		return nil, usagef("%s: --sample-bytes %d: want 1 to %d", cmd, n, tracer.MaxSampleBytes)
	}
	for _, unit := range c.StringSlice("unit") {
		path, err := tracer.ResolveUnit(unit)
		if err != nil {
			return nil, err
		}
		cgroups = append(cgroups, path)
	}
	sym, err := symbolize.New("/proc", c.StringSlice("debug-dir")...)
	if err != nil {
		return nil, err
	}
	follow := len(command) > 0
	if c.IsSet("follow-forks") {
		follow = c.Bool("follow-forks")
	}
	return &trace{log: log, pol: pol, over: over, cfg: tracer.Config{
		Pids:        pids,
		Command:     command,
		Cgroups:     cgroups,
		All:         c.Bool("all"),
		FollowForks: follow,
		Mmap:        c.Bool("mmap"),
		User:        runAs,
		SampleBytes: c.Uint64("sample-bytes"),
		Stdin:       c.App.Reader,
		Stdout:      c.App.Writer,
		Stderr:      c.App.ErrWriter,
		Symbolizer:  sym,
		Logger:      log,
		SandboxRisk: sandbox.Risk,
	}}, nil
}

// resolve makes the policy, with the overrides o (the trace flags' and the
// command's own), the tracer's effective policy; a mistake is a usage error.
func (tr *trace) resolve(o policy.Overrides) error {
	eff, err := policy.Resolve(tr.pol, o)
	if err != nil {
		return usageError{err}
	}
	tr.cfg.Policy = eff
	return nil
}

// start attaches the tracer. Its context ends at the duration or the first
// SIGINT/SIGTERM (a second one kills at once); done releases everything.
func (tr *trace) start(c *cli.Context) (ctx context.Context, t *tracer.Tracer, done func(), err error) {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	ctx, cancel := context.WithTimeout(ctx, tr.cfg.Policy.Duration)
	t, err = tracer.New(ctx, tr.cfg)
	if err != nil {
		cancel()
		stop()
		return nil, nil, nil, err
	}
	return ctx, t, func() { t.Close(); cancel(); stop() }, nil
}
