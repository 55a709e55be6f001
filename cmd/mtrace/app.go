package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/sink"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// usageError is a mistake in how mtrace was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run runs mtrace with args and returns its exit code; errors go to stderr
// in one line. With dropCaps, commands that trace drop the capabilities they
// no longer need once attached: in a process of its own, not in a test's.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, dropCaps bool) int {
	// mtrace's memory holds what it has seen of its targets: no core dumps, no ptrace.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(stderr, "mtrace: disable core dumps: %s\n", err)
		return exitRuntime
	}
	app := newApp(stdin, stdout, stderr)
	app.Metadata = map[string]any{dropCapsKey: dropCaps}
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	// One line, and a target's name in it (a refused --pid's executable) escaped.
	fmt.Fprintf(stderr, "mtrace: %s\n", sink.Escape(strings.ReplaceAll(err.Error(), "\n", "; ")))
	if errors.As(err, new(usageError)) {
		return exitUsage
	}
	return exitRuntime
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	app := &cli.App{
		Name:           "mtrace",
		Usage:          "trace heap allocations of running programs with eBPF",
		Reader:         stdin,
		Writer:         stdout,
		ErrWriter:      stderr,
		OnUsageError:   onUsage,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			recordCommand(),
			topCommand(),
			reportCommand(),
			policyCommand(),
			checkCommand(),
			benchWorkloadCommand(),
			completionCommand(),
			manCommand(),
			versionCommand(),
		},
		EnableBashCompletion: true,
		// Without a command, or with an unknown one, the root action runs.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("no command %q; see mtrace --help", c.Args().First())
			}
			return usagef("give a command; see mtrace --help")
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsage
	}
	return app
}

// logLevelFlag is the --log-level flag of every command that logs.
func logLevelFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL` on stderr: debug, info, warn or error"}
}

// logger returns the logger the --log-level flag asks for, writing to stderr.
func logger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level})), nil
}
