package overhead

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mtrace/mtrace/internal/workload"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/attach"
)

// overheadRow is one way of running the workload. An optional row (another
// tool) that fails is shown as unavailable, with why, instead of ending
// the calibration.
type overheadRow struct {
	name     string
	run      func(ctx context.Context, command []string) (float64, error)
	optional bool
}

// Policy is a policy file that lifts the rate and CPU limits, so that
// mtrace's rows trace every allocation.
const Policy = "[limits]\nmax_events_per_second = 1000000000\nmax_cpu_percent = 1000\n"

// sampleBytes is the byte-sampling rate of mtrace's sampled row.
const sampleBytes = 524288

// Measure runs the calibration and prints its table to w. command runs the
// workload, given its op count as its last argument; an empty command
// runs mtrace's built-in one.
func Measure(ctx context.Context, w io.Writer, command []string, ops, rounds int) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find mtrace's executable: %w", err)
	}
	if len(command) == 0 {
		command = []string{self, "bench-workload"}
	}
	command = append(slices.Clone(command), strconv.Itoa(ops))
	dir, err := os.MkdirTemp("", "mtrace-overhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pol := filepath.Join(dir, "policy.toml")
	if err := sink.WriteFile(pol, nil, func(w io.Writer) error { _, err := io.WriteString(w, Policy); return err }); err != nil {
		return err
	}
	record := func(extra ...string) func(context.Context, []string) (float64, error) {
		return func(ctx context.Context, command []string) (float64, error) {
			args := append([]string{"record", "--policy", pol, "--output", filepath.Join(dir, "report.json")}, extra...)
			if os.Getuid() == 0 {
				// As the untraced row runs it, so that the rows compare
				// and the workload is where its user can reach it.
				args = append(args, "--user", "root")
			}
			return untraced(ctx, append(append([]string{self}, args...), append([]string{"--"}, command...)...))
		}
	}
	rows := []overheadRow{
		{name: "untraced", run: untraced},
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
			ns, err := r.run(ctx, command)
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
	fmt.Fprintf(w, "(%s, %d ops per run, median of %d rounds)\n", filepath.Base(command[0]), ops, rounds)
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// emptyProbes runs the workload under empty probes, for it only.
func emptyProbes(atSymbol bool) func(context.Context, []string) (float64, error) {
	return func(ctx context.Context, argv []string) (float64, error) {
		var probes *attach.EmptyProbes
		defer func() {
			if probes != nil {
				probes.Close()
			}
		}()
		return workload.Run(ctx, argv, func(pid int) (err error) {
			probes, err = attach.Empty("/proc", pid, atSymbol)
			return err
		})
	}
}

// untraced runs a command that runs the workload (or the workload itself,
// untraced), and returns its ns per op.
func untraced(ctx context.Context, argv []string) (float64, error) {
	return workload.Run(ctx, argv, nil)
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
func external(toolArgv func(pid int) []string) func(context.Context, []string) (float64, error) {
	return func(ctx context.Context, argv []string) (float64, error) {
		var done chan error
		var tool *exec.Cmd
		defer func() {
			if done != nil {
				tool.Process.Signal(syscall.SIGINT)
				<-done
			}
		}()
		return workload.Run(ctx, argv, func(pid int) error {
			args := toolArgv(pid)
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
				return fmt.Errorf("%s exited before attaching: %v: %s", filepath.Base(args[0]), err, workload.LastLine(stderr.String()))
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
