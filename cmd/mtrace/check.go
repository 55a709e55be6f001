package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/internal/hostcheck"
	"github.com/mtrace/mtrace/internal/overhead"
	"github.com/mtrace/mtrace/internal/sandbox"
	"github.com/mtrace/mtrace/sink"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "tell whether this host can run mtrace, and why not",
		Description: `Checks, one line each, the kernel version, BTF, uprobes, the BPF ring
buffer, uprobe_multi links, uprobe sessions, the capabilities mtrace holds, lockdown,
perf_event_paranoid, cgroup v2, that mtrace's BPF programs load, whether
a return probe leaves a process under seccomp alive (where it does not,
mtrace leaves such processes alone), and with --pid the allocators mtrace
would probe in that process and where (the planned probe sites), and for
each file it maps whether it has unwind tables (.eh_frame or .debug_frame)
and how many of its functions keep a frame pointer. Exits 0 only when
every required check passes; a failing check names its fix.

With --overhead it then measures what tracing costs per allocation on
this host: a workload doing malloc and free in a loop runs untraced, under
empty probes at the symbols, under empty probes at the planned sites (the
floor any eBPF allocation tracer pays), under mtrace with every allocation
and with --sample-bytes, and under bcc's memleak and bpftrace if they are
installed, interleaved over --rounds rounds; the table gives the median ns
per op and its ratio to the floor. The workload is built into mtrace, or
the command after --, which must take the op count as its last argument,
print "ready", wait for a line on stdin, then print ns_per_op=N
(testdata/bench.c is one).

Examples:
   mtrace check
   mtrace check --pid 1234
   mtrace check --overhead
   mtrace check --overhead --rounds 5 --ops 200000 -- ./bin/bench`,
		Flags: []cli.Flag{
			&cli.IntSliceFlag{Name: "pid", Aliases: []string{"p"}, Usage: "also list the allocators mtrace would probe in `PID`, and how the stacks through each file it maps can be walked (repeatable)"},
			&cli.BoolFlag{Name: "overhead", Usage: "also measure the cost per allocation of empty probes, of mtrace and of other tracers on this host"},
			&cli.IntFlag{Name: "ops", Value: 100000, Usage: "with --overhead, `N` allocations per run of the workload"},
			&cli.IntFlag{Name: "rounds", Value: 3, Usage: "with --overhead, run every configuration `N` times, interleaved, and take the median"},
		},
		Action: func(c *cli.Context) error {
			failed := 0
			for _, ch := range append(hostcheck.Run("/proc", c.IntSlice("pid"), true), sandbox.Check(c.Context)) {
				status := "ok  "
				switch {
				case !ch.OK && ch.Required:
					status = "FAIL"
					failed++
				case !ch.OK:
					status = "warn"
				}
				// A detail names a target's files and functions: escaped.
				line := fmt.Sprintf("%s %-20s %s", status, ch.Name, sink.Escape(ch.Detail))
				if !ch.OK {
					line += " — fix: " + ch.Fix
				}
				fmt.Fprintln(c.App.Writer, line)
			}
			if failed > 0 {
				return fmt.Errorf("check: %d required check(s) failed", failed)
			}
			if !c.Bool("overhead") {
				return nil
			}
			if c.Int("ops") < 1 || c.Int("rounds") < 1 {
				return usagef("check: --ops and --rounds must be at least 1")
			}
			fmt.Fprintln(c.App.Writer)
			return overhead.Measure(c.Context, c.App.Writer, c.Args().Slice(), c.Int("ops"), c.Int("rounds"))
		},
	}
}
