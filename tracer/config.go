package tracer

import (
	"io"
	"log/slog"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/symbolize"
)

// Config says what to trace and within which limits.
type Config struct {
	// Pids are running processes to trace.
	Pids []int
	// Command is started and traced from its first allocation; empty for none.
	Command []string
	// Stdin, Stdout and Stderr are given to Command.
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	Limits     policy.Limits
	Symbolizer *symbolize.Symbolizer
	Logger     *slog.Logger
	// ProcRoot is where /proc is mounted; tests may point it elsewhere.
	ProcRoot string
}
