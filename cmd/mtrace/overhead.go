package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/attach"
)

// An overhead calibration runs an allocation-bound workload untraced, under
// empty probes (at the symbols, then at the planned sites: the floor any
// eBPF allocation tracer pays), under mtrace, and under the other tracers
// installed, interleaved over several rounds, and prints ns per op with the
// ratio of each to the floor measured in the same run.
//
// A workload is a command that, given OPS as its last argument, prints
// "ready", waits for a line on stdin, does OPS allocations and frees, and
// prints ns_per_op=N: testdata/bench.c, or mtrace's own built-in one.

// overheadRow is one way of running the workload. An optional row (another
// tool) that fails is shown as unavailable, with why, instead of ending
// the calibration.
type overheadRow struct {
	name     string
	run      func(ctx context.Context, workload []string) (float64, error)
	optional bool
}

// overheadPolicy lifts the rate and CPU limits, so that mtrace's rows trace
// every allocation.
const overheadPolicy = "[limits]\nmax_events_per_second = 1000000000\nmax_cpu_percent = 1000\n"

// sampleBytes is the byte-sampling rate of mtrace's sampled row.
const sampleBytes = 524288

// measureOverhead prints the calibration table to w.
func measureOverhead(ctx context.Context, w io.Writer, workload []string, ops, rounds int) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find mtrace's executable: %w", err)
	}
	if len(workload) == 0 {
		workload = []string{self, "bench-workload"}
	}
	workload = append(slices.Clone(workload), strconv.Itoa(ops))
	dir, err := os.MkdirTemp("", "mtrace-overhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pol := filepath.Join(dir, "policy.toml")
	if err := sink.WriteFile(pol, nil, func(w io.Writer) error { _, err := io.WriteString(w, overheadPolicy); return err }); err != nil {
		return err
	}
	record := func(extra ...string) func(context.Context, []string) (float64, error) {
		return func(ctx context.Context, workload []string) (float64, error) {
			args := append([]string{"record", "--policy", pol, "--output", filepath.Join(dir, "report.json")}, extra...)
			if os.Getuid() == 0 {
				// As the untraced row runs it, so that the rows compare
				// and the workload is where its user can reach it.
				args = append(args, "--user", "root")
			}
			return runUnder(ctx, append(append([]string{self}, args...), append([]string{"--"}, workload...)...))
		}
	}
	rows := []overheadRow{
		{name: "untraced", run: runUnder},
		{name: "empty probes at the symbols", run: emptyProbes(true)},
		{name: "empty probes at the planned sites (the floor)", run: emptyProbes(false)},
		{name: "mtrace record (every allocation, with stacks)", run: record()},
		{name: fmt.Sprintf("mtrace record --sample-bytes %d", sampleBytes), run: record("--sample-bytes", strconv.Itoa(sampleBytes))},
	}
	rows = append(rows, otherTracers()...)
	times := make([][]float64, len(rows))
	failed := make([]error, len(rows))
	for round := 0; round < rounds; round++ {
		for i, r := range rows {
			if failed[i] != nil {
				continue
			}
			ns, err := r.run(ctx, workload)
			switch {
			case err != nil && r.optional:
				failed[i] = err
			case err != nil:
				return fmt.Errorf("overhead of %s: %w", r.name, err)
			default:
				times[i] = append(times[i], ns)
			}
		}
	}
	floor := median(times[2])
	fmt.Fprintf(w, "%-50s %10s %8s\n", "configuration", "ns/op", "x floor")
	for i, r := range rows {
		if failed[i] != nil {
			fmt.Fprintf(w, "%-50s %19s (%v)\n", r.name, "unavailable", failed[i])
			continue
		}
		ns := median(times[i])
		fmt.Fprintf(w, "%-50s %10.0f %8.2f\n", r.name, ns, ns/floor)
	}
	fmt.Fprintf(w, "(%s, %d ops per run, median of %d rounds)\n", filepath.Base(workload[0]), ops, rounds)
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// emptyProbes runs the workload under empty probes, for it only.
func emptyProbes(atSymbol bool) func(context.Context, []string) (float64, error) {
	return func(ctx context.Context, workload []string) (float64, error) {
		var probes *attach.EmptyProbes
		defer func() {
			if probes != nil {
				probes.Close()
			}
		}()
		return runWith(ctx, workload, func(pid int) (err error) {
			probes, err = attach.Empty("/proc", pid, atSymbol)
			return err
		})
	}
}

// runUnder runs a command that runs the workload (or the workload itself,
// untraced), and returns its ns per op.
func runUnder(ctx context.Context, argv []string) (float64, error) {
	return runWith(ctx, argv, nil)
}

var nsPerOp = regexp.MustCompile(`^ns_per_op=([0-9.]+)$`)

// runWith starts argv, lets ready (if not nil) do its work on the workload's
// pid once it said "ready", then starts the workload and reads its result.
func runWith(ctx context.Context, argv []string, ready func(pid int) error) (float64, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	ns, err := drive(out, in, cmd.Process.Pid, ready)
	in.Close()
	io.Copy(io.Discard, out)
	if werr := cmd.Wait(); werr != nil {
		err = errors.Join(err, fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), werr, lastLine(stderr.String())))
	}
	return ns, err
}

func drive(out io.Reader, in io.Writer, pid int, ready func(pid int) error) (float64, error) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "ready" {
			if ready != nil {
				if err := ready(pid); err != nil {
					return 0, err
				}
			}
			if _, err := io.WriteString(in, "go\n"); err != nil {
				return 0, err
			}
		}
		if m := nsPerOp.FindStringSubmatch(line); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, errors.New("the workload ended without saying ns_per_op")
}

// otherTracers are rows for the comparable tracers installed on this host:
// bcc's memleak and bpftrace probing the same functions, each attached to
// the workload's pid and given a second to attach.
func otherTracers() []overheadRow {
	var rows []overheadRow
	if path, err := exec.LookPath("memleak-bpfcc"); err == nil {
		rows = append(rows, overheadRow{name: "bcc memleak-bpfcc -p", optional: true, run: external(func(pid int) []string {
			return []string{path, "-p", strconv.Itoa(pid)}
		})})
	}
	if path, err := exec.LookPath("bpftrace"); err == nil {
		rows = append(rows, overheadRow{name: "bpftrace (empty malloc, uretprobe malloc, free)", optional: true, run: external(func(pid int) []string {
			return []string{path, "-p", strconv.Itoa(pid), "-e",
				"uprobe:libc:malloc {} uretprobe:libc:malloc {} uprobe:libc:free {}"}
		})})
	}
	return rows
}

// external runs the workload under a tool started on its pid, once the
// tool says it is attaching and a second more has passed.
func external(argv func(pid int) []string) func(context.Context, []string) (float64, error) {
	return func(ctx context.Context, workload []string) (float64, error) {
		var done chan error
		var tool *exec.Cmd
		defer func() {
			if done != nil {
				tool.Process.Signal(syscall.SIGINT)
				<-done
			}
		}()
		return runWith(ctx, workload, func(pid int) error {
			args := argv(pid)
			attaching := &watch{word: []byte("Attaching"), seen: make(chan struct{})}
			var stderr strings.Builder
			tool = exec.CommandContext(ctx, args[0], args[1:]...)
			tool.Stdout, tool.Stderr = attaching, &stderr
			if err := tool.Start(); err != nil {
				return err
			}
			done = make(chan error, 1)
			go func() { done <- tool.Wait() }()
			select {
			case <-attaching.seen:
			case err := <-done:
				done = nil
				return fmt.Errorf("%s exited before attaching: %v: %s", filepath.Base(args[0]), err, lastLine(stderr.String()))
			case <-time.After(time.Minute):
				return fmt.Errorf("%s did not say it was attaching", filepath.Base(args[0]))
			}
			time.Sleep(time.Second)
			return nil
		})
	}
}

// watch is a writer that closes seen once word was written to it.
type watch struct {
	word []byte
	seen chan struct{}
	buf  []byte
}

func (w *watch) Write(p []byte) (int, error) {
	if w.word == nil {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, w.word) {
		close(w.seen)
		w.word, w.buf = nil, nil
	} else {
		w.buf = w.buf[max(0, len(w.buf)-len(w.word)):]
	}
	return len(p), nil
}

// lastLine is the last line of s, the one-line error of a command that failed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

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
				if err := denyUretprobeSyscall(); err != nil {
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
