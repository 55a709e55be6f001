package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "render a saved report again, decrypting it if needed",
		ArgsUsage: "FILE",
		Description: `Reads a report that mtrace record wrote as JSON or as a pprof profile,
encrypted with age or not, and writes it as text, JSON, pprof or folded stacks.

Examples:
   mtrace report report.json
   mtrace report --format folded profile.pb.gz > stacks.folded
   mtrace report --identity key.txt --format json report.json.age
   mtrace report --diff-base yesterday.pb.gz today.pb.gz

A report larger than the policy's max_output_bytes (256 MiB by default), a
profile that inflates to more (mtrace record never writes one), or one
that would take more than 4 (JSON) or 32 (pprof) times as much decoded, is
refused.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "identity", Aliases: []string{"i"}, Usage: "decrypt with the age identities in `FILE`"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "output `FORMAT`: text, json, html, pprof or folded; without it, the --output extension decides (.json, .html, .pb.gz, .folded, else text)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (mode 0600) instead of stdout; in a directory of the sudo user, as that user"},
			&cli.IntFlag{Name: "top", Value: 10, Usage: "show the top `N` stacks in the text report"},
			&cli.StringFlag{Name: "diff-base", Usage: "show only what grew since the saved report `OLD` (same executables and stacks)"},
			&cli.StringFlag{Name: "policy", Usage: "read reports of at most the policy `FILE`'s max_output_bytes (default: 256 MiB), inflated or decrypted"},
		},
		Action: renderReport,
	}
}

func renderReport(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("report: give one report FILE")
	}
	format, err := formatFor(c.String("format"), c.String("output"))
	if err != nil {
		return err
	}
	if format == "pprof" && c.String("output") == "" {
		return usagef("report: a pprof profile needs --output FILE")
	}
	limits := policy.DefaultLimits()
	if file := c.String("policy"); file != "" {
		pol, err := policy.Load(file)
		if err != nil {
			return err
		}
		limits = pol.Limits
	}
	r, err := loadReport(c.Args().First(), c.String("identity"), limits.MaxOutputBytes)
	if err != nil {
		return err
	}
	if base := c.String("diff-base"); base != "" {
		old, err := loadReport(base, c.String("identity"), limits.MaxOutputBytes)
		if err != nil {
			return err
		}
		r = sink.Diff(r, old)
	}
	write := sink.WriterFor(r, format, c.Int("top"))
	if out := c.String("output"); out != "" {
		return sink.WriteFile(out, invokingUser(), write)
	}
	return write(c.App.Writer)
}

// loadReport reads a saved report; without --identity an encrypted one is a usage mistake.
func loadReport(path, identity string, limit int64) (*sink.Report, error) {
	r, err := sink.LoadReport(path, identity, limit)
	if errors.Is(err, sink.ErrNeedIdentity) {
		return nil, usageError{err}
	}
	return r, err
}
