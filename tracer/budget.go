package tracer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/bpf"
)

// ErrCPUBudget means mtrace stopped because it could not stay within its CPU
// budget even at the lowest event rate.
var ErrCPUBudget = errors.New("CPU budget exceeded")

const (
	// budgetWindow is how often CPU use is weighed against the budget.
	budgetWindow = time.Second
	// minRate is the lowest per-CPU event rate sampling goes down to.
	minRate = 64
)

// budget holds mtrace to its CPU limit: its own CPU time plus the run time
// of its BPF programs (which run in the targets), as a share of one CPU.
//
// The kernel's BPF run-time statistics cost every program run two clock
// reads, so unless something else keeps them on, mtrace turns them on only
// for the first poll interval of each window and scales that sample to the
// window.
type budget struct {
	percent float64
	rate    uint64    // current per-CPU event budget
	since   time.Time // start of the current window
	own     time.Duration

	always  bool      // something else keeps the statistics on: measure whole windows
	blind   bool      // the statistics cannot be turned on: count mtrace's own CPU only
	stats   io.Closer // mtrace's hold on the statistics; nil while they are off
	begun   time.Time // start of the window's sample
	mark    time.Duration
	sampled time.Duration // length of the window's sample, once taken
	bpf     time.Duration // BPF run time in the sample
}

// startBudget takes the first readings and starts the first sample.
func (t *Tracer) startBudget() error {
	b := &budget{percent: t.cfg.Policy.Limits.MaxCPUPercent, rate: rateBudget(t.cfg.Policy.Limits.MaxEventsPerSecond)}
	b.always = statsOn()
	t.budget = b
	t.startWindow(time.Now())
	return nil
}

// statsOn reports whether BPF run-time statistics are on (kernel.bpf_stats_enabled).
func statsOn() bool {
	data, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	return err == nil && strings.TrimSpace(string(data)) == "1"
}

// startWindow starts a budget window at now: its readings, and its sample
// of the BPF run time.
func (t *Tracer) startWindow(now time.Time) {
	b := t.budget
	b.since, b.own, b.sampled = now, ownCPU(), 0
	if !b.always && !b.blind {
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			t.log.Warn("no BPF run-time statistics: the CPU budget counts mtrace's own CPU only", "err", err)
			b.blind = true
			return
		}
		b.stats = stats
	}
	b.begun, b.mark = now, t.bpfRuntime()
}

// ownCPU is the CPU time mtrace has used so far.
func ownCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bpfRuntime is the run time the kernel has counted for mtrace's programs.
func (t *Tracer) bpfRuntime() time.Duration {
	var d time.Duration
	for _, p := range t.ProgramStats() {
		d += p.Runtime
	}
	return d
}

// checkBudget ends the window's sample after a poll interval, and at the
// end of a window weighs its CPU use: over budget, the event rate is cut
// sixteenfold; at the lowest rate, tracing must stop.
func (t *Tracer) checkBudget() error {
	b := t.budget
	now := time.Now()
	if b.stats != nil && now.Sub(b.begun) >= pollInterval {
		b.bpf, b.sampled = t.bpfRuntime()-b.mark, now.Sub(b.begun)
		b.stats.Close()
		b.stats = nil
	}
	elapsed := now.Sub(b.since)
	if elapsed < budgetWindow {
		return nil
	}
	var bpf time.Duration
	switch {
	case b.always:
		bpf = t.bpfRuntime() - b.mark
	case b.sampled > 0:
		bpf = time.Duration(float64(b.bpf) * float64(elapsed) / float64(b.sampled))
	}
	share := float64(ownCPU()-b.own+bpf) / float64(elapsed) * 100
	t.startWindow(now)
	if share <= b.percent {
		return nil
	}
	if b.rate <= minRate {
		return fmt.Errorf("%w: %.1f%% of a CPU with sampling at its lowest rate, limit %.1f%%; stopped", ErrCPUBudget, share, b.percent)
	}
	b.rate = max(b.rate/16, minRate)
	if err := t.objs.RateBudget.Set(b.rate); err != nil {
		return fmt.Errorf("lower the event rate: %w", err)
	}
	t.log.Warn("over the CPU budget: sampling more", "cpu_percent", fmt.Sprintf("%.1f", share), "limit", b.percent, "events_per_cpu_second", b.rate)
	return nil
}

// ProgramStats reads the kernel's statistics of the programs that ran.
func (t *Tracer) ProgramStats() []ProgramStats {
	var out []ProgramStats
	for name, p := range map[string]*ebpf.Program{
		bpf.AllocProgAllocEnter: t.objs.AllocEnter, bpf.AllocProgAllocExit: t.objs.AllocExit, bpf.AllocProgAllocSession: t.objs.AllocSession,
		bpf.AllocProgProcessExec: t.objs.ProcessExec, bpf.AllocProgProcessFork: t.objs.ProcessFork,
		bpf.AllocProgProcessExit: t.objs.ProcessExit, bpf.AllocProgMmapExit: t.objs.MmapExit,
		bpf.AllocProgMunmapEnter: t.objs.MunmapEnter, bpf.AllocProgCodeMapEnter: t.objs.CodeMapEnter,
		bpf.AllocProgCodeMapExit: t.objs.CodeMapExit, bpf.AllocProgCodeUnmapEnter: t.objs.CodeUnmapEnter,
		bpf.AllocProgCodeUnmapExit: t.objs.CodeUnmapExit,
	} {
		if s, err := p.Stats(); err == nil && s.RunCount > 0 {
			out = append(out, ProgramStats{Name: name, Runs: s.RunCount, Runtime: s.Runtime})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
