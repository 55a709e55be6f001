package tracer

import (
	"errors"
	"fmt"
	"io"
	"sort"
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
type budget struct {
	percent float64
	rate    uint64    // current per-CPU event budget
	stats   io.Closer // keeps the kernel's BPF run-time statistics on
	since   time.Time
	used    time.Duration // CPU counted at since
}

// startBudget turns on BPF run-time statistics and takes the first reading.
// Without them (no CAP_SYS_ADMIN) the budget counts mtrace's own CPU only.
func (t *Tracer) startBudget() error {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.log.Warn("no BPF run-time statistics: the CPU budget counts mtrace's own CPU only", "err", err)
		stats = io.NopCloser(nil)
	}
	t.budget = &budget{percent: t.cfg.Limits.MaxCPUPercent, rate: rateBudget(t.cfg.Limits.MaxEventsPerSecond), stats: stats, since: time.Now()}
	t.budget.used = t.cpuUsed()
	return nil
}

// cpuUsed is mtrace's CPU time so far plus its BPF programs' run time.
func (t *Tracer) cpuUsed() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, p := range t.programStats() {
		used += p.Runtime
	}
	return used
}

// programStats reads the kernel's statistics of the programs that ran.
func (t *Tracer) programStats() []ProgramStats {
	var out []ProgramStats
	for name, p := range map[string]*ebpf.Program{
		bpf.AllocProgAllocEnter: t.objs.AllocEnter, bpf.AllocProgAllocExit: t.objs.AllocExit,
		bpf.AllocProgProcessExec: t.objs.ProcessExec, bpf.AllocProgProcessFork: t.objs.ProcessFork,
		bpf.AllocProgProcessExit: t.objs.ProcessExit, bpf.AllocProgMmapExit: t.objs.MmapExit,
		bpf.AllocProgMunmapEnter: t.objs.MunmapEnter,
	} {
		if s, err := p.Stats(); err == nil && s.RunCount > 0 {
			out = append(out, ProgramStats{Name: name, Runs: s.RunCount, Runtime: s.Runtime})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// checkBudget weighs the last window's CPU use: over budget, the event rate
// is cut sixteenfold; at the lowest rate, tracing must stop.
func (t *Tracer) checkBudget() error {
	b := t.budget
	elapsed := time.Since(b.since)
	if elapsed < budgetWindow {
		return nil
	}
	used := t.cpuUsed()
	share := float64(used-b.used) / float64(elapsed) * 100
	b.since, b.used = time.Now(), used
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
