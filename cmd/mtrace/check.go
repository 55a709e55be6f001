package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/tracer"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "tell whether this host can run mtrace, and why not",
		Description: `Checks, one line each, the kernel version, BTF, uprobes, the BPF ring
buffer, uprobe_multi links, the capabilities mtrace holds, lockdown,
perf_event_paranoid, cgroup v2, that mtrace's BPF programs load, and with
--pid the allocators mtrace would probe in that process. Exits 0 only when
every required check passes; a failing check names its fix.

Examples:
   mtrace check
   mtrace check --pid 1234`,
		Flags: []cli.Flag{
			&cli.IntSliceFlag{Name: "pid", Aliases: []string{"p"}, Usage: "also list the allocators mtrace would probe in `PID` (repeatable)"},
		},
		Action: func(c *cli.Context) error {
			failed := 0
			for _, ch := range tracer.HostChecks("/proc", c.IntSlice("pid"), true) {
				status := "ok  "
				switch {
				case !ch.OK && ch.Required:
					status = "FAIL"
					failed++
				case !ch.OK:
					status = "warn"
				}
				line := fmt.Sprintf("%s %-20s %s", status, ch.Name, ch.Detail)
				if !ch.OK {
					line += " — fix: " + ch.Fix
				}
				fmt.Fprintln(c.App.Writer, line)
			}
			if failed > 0 {
				return fmt.Errorf("check: %d required check(s) failed", failed)
			}
			return nil
		},
	}
}
