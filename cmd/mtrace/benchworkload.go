package main

import (
	"bufio"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/internal/sandbox"
)

// benchWorkloadCommand is the built-in workload of check --overhead.
func benchWorkloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench-workload",
		Usage:     "the built-in workload of mtrace check --overhead",
		ArgsUsage: "OPS",
		Hidden:    true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "deny-uretprobe-syscall", Usage: "run under a seccomp filter that kills the workload at the uretprobe system call"},
		},
		Action: func(c *cli.Context) error {
			ops, err := strconv.ParseInt(c.Args().First(), 10, 64)
			if err != nil || ops < 1 {
				return usagef("bench-workload: give the number of ops")
			}
			if c.Bool("deny-uretprobe-syscall") {
				if err := sandbox.DenyUretprobeSyscall(); err != nil {
					return fmt.Errorf("bench-workload: %w", err)
				}
			}
			fmt.Fprintln(c.App.Writer, "ready")
			if _, err := bufio.NewReader(c.App.Reader).ReadString('\n'); err != nil {
				return fmt.Errorf("bench-workload: wait for the start: %w", err)
			}
			ns, err := benchRun(ops)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "ns_per_op=%.1f\n", ns)
			return nil
		},
	}
}
