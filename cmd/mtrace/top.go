package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/sink"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:      "top",
		Usage:     "show live allocation activity, refreshed every interval",
		ArgsUsage: "[-- COMMAND [ARGS...]]",
		Description: `Traces like record and shows, every interval, the memory each executable
has in use, its allocation rate, the busiest stacks and the lost events. On a
terminal the view is redrawn in place and q quits; otherwise a plain-text
snapshot is printed every interval. Ctrl-C, --duration or the targets'
exit end it too.

Examples:
   mtrace top --pid 1234
   mtrace top --all --interval 5s`,
		Flags: append(traceFlags(),
			&cli.DurationFlag{Name: "interval", Aliases: []string{"i"}, Value: 2 * time.Second, Usage: "refresh every `INTERVAL`"},
			&cli.IntFlag{Name: "top", Value: 10, Usage: "show the top `N` executables and stacks"},
		),
		Action: top,
	}
}

func top(c *cli.Context) error {
	tr, err := newTrace(c, "top")
	if err != nil {
		return err
	}
	if c.Duration("interval") < 100*time.Millisecond || c.Int("top") < 1 {
		return usagef("top: --interval must be at least 100ms and --top at least 1")
	}
	if err := tr.resolve(tr.over); err != nil {
		return err
	}
	tr.cfg.TopStacks = true
	ctx, t, done, err := tr.start(c)
	if err != nil {
		return err
	}
	defer done()
	if err := dropCapabilities(c, tr.log, false); err != nil {
		return err
	}
	ctx, quit := context.WithCancel(ctx)
	defer quit()
	terminal := isTerminal(c.App.Writer)
	if in, ok := c.App.Reader.(*os.File); ok && terminal && isTerminal(in) {
		restore, err := watchForQuit(in, quit)
		if err != nil {
			return err
		}
		defer restore()
	}
	runErr := make(chan error, 1)
	go func() {
		_, err := t.Run(ctx)
		runErr <- err
	}()

	view := &topView{w: c.App.Writer, n: c.Int("top"), terminal: terminal, start: time.Now()}
	tick := time.NewTicker(c.Duration("interval"))
	defer tick.Stop()
	for {
		select {
		case err := <-runErr:
			view.draw(t.Metrics())
			return err
		case <-tick.C:
			view.draw(t.Metrics())
		}
	}
}

// watchForQuit puts the terminal in to non-canonical, no-echo mode and
// calls quit when q is typed; restore puts the terminal back.
func watchForQuit(in *os.File, quit func()) (restore func(), err error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read terminal settings: %w", err)
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("set terminal: %w", err)
	}
	go func() {
		var b [1]byte
		for {
			if n, err := in.Read(b[:]); err != nil || (n == 1 && (b[0] == 'q' || b[0] == 'Q')) {
				quit()
				return
			}
		}
	}()
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// topView draws the live view from successive snapshots.
type topView struct {
	w        io.Writer
	n        int
	terminal bool
	start    time.Time
	last     sink.Metrics
	lastAt   time.Time
}

func (v *topView) draw(s sink.Metrics) {
	now := time.Now()
	secs := now.Sub(v.lastAt).Seconds()
	if v.lastAt.IsZero() {
		secs = now.Sub(v.start).Seconds()
	}
	prev := map[string]sink.ExecutableMetrics{}
	for _, e := range v.last.Executables {
		prev[e.Exe] = e
	}
	var b strings.Builder
	if v.terminal {
		b.WriteString("\033[H\033[2J")
	} else {
		b.WriteString("---\n")
	}
	fmt.Fprintf(&b, "mtrace top: %s, %.0f events/s, %d processes, %d lost events, %d sampled out",
		now.Sub(v.start).Round(time.Second), float64(s.Events-v.last.Events)/secs, s.Processes, s.Lost, s.SampledOut)
	if v.terminal {
		b.WriteString("   (q to quit)")
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "LIVE\tALLOCS/S\tBYTES/S\tEXECUTABLE\t")
	for i, e := range s.Executables {
		if i == v.n {
			break
		}
		p := prev[e.Exe]
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t\n", sink.Bytes(e.LiveBytes), float64(e.Allocs-p.Allocs)/secs,
			sink.Bytes(uint64(float64(e.AllocBytes-p.AllocBytes)/secs)), sink.Escape(e.Exe))
	}
	fmt.Fprintln(tw, "\t\t\t\t")
	fmt.Fprintln(tw, "ALLOCATED\tALLOCS\tLIVE\tTOP STACKS\t")
	for i, st := range s.TopStacks {
		if i == v.n {
			break
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", sink.Bytes(st.AllocBytes), st.Allocs, sink.Bytes(st.LiveBytes), stackName(st))
	}
	tw.Flush()
	fmt.Fprint(v.w, b.String())
	v.last, v.lastAt = s, now
}

// stackName names a stack by its allocation function and first callers,
// escaped.
func stackName(st sink.TopStack) string {
	names := []string{sink.Escape(st.Frames[0].Function)}
	for i, f := range st.Frames[1:] {
		if i == 3 {
			names = append(names, "…")
			break
		}
		names = append(names, sink.Escape(f.Function))
	}
	return fmt.Sprintf("%s (pid %d)", strings.Join(names, " < "), st.Pid)
}
