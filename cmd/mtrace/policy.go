package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "work with policy files",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate a policy file and print what it allows",
			ArgsUsage: "FILE",
			Description: `Reads a policy file (TOML), reports the first mistake by line and field,
or prints what the policy lets mtrace trace and how it must write reports.
Executables are matched by path or base name (a renamed copy of a denied
program is not denied), users by their real, effective, saved and
filesystem uids: any one matching a deny rule denies, and an allow rule
must allow all four (a set-user-ID program is judged as the file's owner,
even after it set its effective uid back). A process whose executable,
user or cgroup cannot be read is denied while a deny rule is in force.

Example:
   mtrace policy check /etc/mtrace/policy.toml`,
			Action: checkPolicy,
		}},
	}
}

func checkPolicy(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("policy check: give one policy FILE")
	}
	p, err := policy.Load(c.Args().First())
	if err != nil {
		return err
	}
	list := func(items []string, none string) string {
		if len(items) == 0 {
			return none
		}
		return strings.Join(items, ", ")
	}
	s, l, o := p.Scope, p.Limits, p.Output
	denylist := "on"
	if s.DefaultDenylist != nil && !*s.DefaultDenylist {
		denylist = "off"
	}
	w := c.App.Writer
	fmt.Fprintf(w, "policy %s is valid\n", p.File)
	fmt.Fprintf(w, "executables: allow %s; deny %s; built-in deny list %s (%s)\n",
		list(s.AllowExecutables, "any"), list(s.DenyExecutables, "none"), denylist, strings.Join(policy.DefaultDenylist, ", "))
	fmt.Fprintf(w, "users (real, effective, saved and filesystem uid): allow %s; deny %s\n", list(s.AllowUsers, "any"), list(s.DenyUsers, "none"))
	fmt.Fprintf(w, "cgroups: allow %s; deny %s\n", list(s.AllowCgroups, "any"), list(s.DenyCgroups, "none"))
	fmt.Fprintf(w, "limits: ring buffer %s, %d live allocations, %d stacks, %d targets, run time %v, %d exited processes kept apart\n",
		sink.Bytes(uint64(l.RingBufferBytes)), l.MaxLive, l.MaxStacks, l.MaxTargets, l.MaxDuration, l.MaxExitedProcesses)
	dir, keep := o.Directory, "all"
	if dir == "" {
		dir = "any"
	}
	if o.Retention > 0 {
		keep = fmt.Sprint(o.Retention)
	}
	fmt.Fprintf(w, "output: directory %s, encrypted to %d recipient(s), keep %s\n", dir, len(o.EncryptTo), keep)
	return nil
}
