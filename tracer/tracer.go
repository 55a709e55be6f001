package tracer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/prometheus/procfs"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/internal/kernel"
	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
	"github.com/mtrace/mtrace/tracer/aggregate"
	"github.com/mtrace/mtrace/tracer/attach"
)

// Tracer is one run of mtrace: loaded programs, attached probes, targets.
type Tracer struct {
	cfg            Config
	log            *slog.Logger
	fs             procfs.FS
	sym            *symbolize.Symbolizer
	objs           bpf.AllocObjects
	reader         *ringbuf.Reader
	links          []link.Link      // the lifecycle links (attachLifecycle)
	attach         *attach.Attacher // the probes on allocators, and their links
	multi          bool             // the kernel has uprobe_multi links
	session        bool             // and uprobe sessions
	avoidSandboxed bool             // processes under seccomp are left alone (Config.SandboxRisk)
	epoch          uint64           // the kernel side's epoch (see recheckTargets)

	agg       *aggregate.Aggregate   // the records and counts of every process image
	swept     time.Time              // when sweep last ran
	sweepGap  time.Duration          // how long sweep waits between runs
	pending   map[uint32]int         // new images that may still map an allocator: tries left
	cgroupsV1 []cgroupTarget         // polled for new members
	cgroupIDs map[uint64]string      // cgroup v2 paths by id, as found
	malformed uint64                 // ring-buffer records that did not decode
	budget    *budget                // CPU budget, while running
	metrics   metrics                // snapshot for metrics
	requests  chan chan *sink.Report // Snapshot's requests, answered by the reader loop

	cmd     *exec.Cmd
	cmdDone chan struct{} // closed when cmd has exited and was reaped

	exited  sync.WaitGroup // one count per pid or command target until it exits
	stop    chan struct{}  // closed by Close: ends exit watchers
	started time.Time
}

// New loads the BPF programs, attaches them to the targets' allocators and
// starts Command if there is one. On error it releases what it built.
func New(ctx context.Context, cfg Config) (t *Tracer, err error) {
	if len(cfg.Pids) == 0 && len(cfg.Command) == 0 && len(cfg.Cgroups) == 0 && !cfg.All {
		return nil, errors.New("no target: give a pid, a command, a cgroup or all")
	}
	if cfg.Policy == nil {
		if cfg.Policy, err = policy.Resolve(policy.Default(), policy.Overrides{}); err != nil {
			return nil, err
		}
	}
	if cfg.SampleBytes > MaxSampleBytes {
		return nil, fmt.Errorf("sample every %d bytes: at most %d", cfg.SampleBytes, MaxSampleBytes)
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	avoidSandboxed := false
	if cfg.SandboxRisk != nil {
		if err := cfg.SandboxRisk(ctx); err != nil {
			cfg.Logger.Warn("processes under seccomp are not traced", "why", err)
			avoidSandboxed = true
		}
	}
	fs, err := procfs.NewFS(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.ProcRoot, err)
	}
	sym := cfg.Symbolizer
	if sym == nil {
		if sym, err = symbolize.New(cfg.ProcRoot); err != nil {
			return nil, err
		}
	}
	t = &Tracer{
		cfg:            cfg,
		avoidSandboxed: avoidSandboxed,
		log:            cfg.Logger,
		fs:             fs,
		sym:            sym,
		pending:        make(map[uint32]int),
		requests:       make(chan chan *sink.Report),
		cgroupIDs:      make(map[uint64]string),
		stop:           make(chan struct{}),
		epoch:          1,
	}
	t.agg = aggregate.New(aggregate.Config{
		MaxExitedProcesses: int(cfg.Policy.Limits.MaxExitedProcesses),
		MaxStacks:          int(cfg.Policy.Limits.MaxStacks),
		MaxTargets:         int(cfg.Policy.Limits.MaxTargets),
		Stacks:             kernelStacks{objs: &t.objs, log: t.log},
		Symbolizer:         sym,
		Probe:              t.probe,
		Elapsed:            func() time.Duration { return time.Since(t.started) },
	})
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
			t = nil
		}
	}()
	var cgroups []cgroupTarget
	for _, path := range cfg.Cgroups {
		cg, err := openCgroup(path)
		if err != nil {
			return t, err
		}
		cgroups = append(cgroups, cg)
	}
	// Probes in every process would make every process on the host trap;
	// when the set of traced processes cannot grow, they fire for it alone.
	// With processes under seccomp left alone, they fire everywhere: a link
	// filtered to pids still hijacks the returns of the others its
	// breakpoints reach (their children), without running the program.
	onlyPids := !t.avoidSandboxed && len(cfg.Command) == 0 && len(cgroups) == 0 && !cfg.All && !cfg.FollowForks
	if err := t.load(cgroups); err != nil {
		return t, err
	}
	t.attach = attach.New(attach.Config{
		ProcRoot: cfg.ProcRoot, Symbolizer: sym, Logger: t.log,
		Programs: t.programs(), Multi: t.multi, OnlyPids: onlyPids,
	})
	if err := t.attachLifecycle(); err != nil {
		return t, err
	}
	if cfg.All || len(cgroups) > 0 || cfg.FollowForks {
		if err := t.attach.Installed(); err != nil {
			return t, err
		}
	}
	for _, pid := range cfg.Pids {
		if err := t.tracePid(pid); err != nil {
			return t, err
		}
	}
	if err := t.traceCgroups(cgroups); err != nil {
		return t, err
	}
	if cfg.All {
		t.traceAll()
	}
	if len(cfg.Command) > 0 {
		if err := t.spawn(ctx, cfg.Command); err != nil {
			return t, err
		}
	}
	t.started = time.Now()
	return t, nil
}

// load loads the BPF objects with the configured limits and filters and opens the ring buffer.
func (t *Tracer) load(cgroups []cgroupTarget) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise memlock limit: %w", err)
	}
	t.multi, t.session = kernel.Links()
	if t.avoidSandboxed && !t.session {
		return errSandboxesAtRisk
	}
	spec, err := attach.Spec(t.multi, t.session)
	if err != nil {
		return err
	}
	l := t.cfg.Policy.Limits
	spec.Maps[bpf.AllocMapEvents].MaxEntries = l.RingBufferBytes
	spec.Maps[bpf.AllocMapLive].MaxEntries = l.MaxLive
	spec.Maps[bpf.AllocMapStacks].MaxEntries = l.MaxStacks
	spec.Maps[bpf.AllocMapTargets].MaxEntries = l.MaxTargets
	var v2 []bpf.AllocCgroupFilter
	follow := t.cfg.FollowForks
	for _, cg := range cgroups {
		if cg.v2 {
			v2 = append(v2, bpf.AllocCgroupFilter{Id: cg.id, Level: cg.level})
		} else {
			follow = true // a v1 cgroup's new processes are found as children of its members
			t.cgroupsV1 = append(t.cgroupsV1, cg)
		}
	}
	if len(v2) > int(spec.Maps[bpf.AllocMapCgroups].MaxEntries) {
		return fmt.Errorf("trace %d cgroups: at most %d", len(v2), spec.Maps[bpf.AllocMapCgroups].MaxEntries)
	}
	for name, v := range map[string]any{
		bpf.AllocVarWakeupBytes:    uint64(l.RingBufferBytes / 32),
		bpf.AllocVarTraceAll:       boolByte(t.cfg.All),
		bpf.AllocVarFollowForks:    boolByte(follow),
		bpf.AllocVarAvoidSandboxed: boolByte(t.avoidSandboxed),
		bpf.AllocVarCgroupCount:    uint32(len(v2)),
		bpf.AllocVarSelfTgid:       uint32(os.Getpid()),
		bpf.AllocVarMayDeny:        boolByte(t.cfg.Policy.MayDeny()),
		bpf.AllocVarRateBudget:     rateBudget(l.MaxEventsPerSecond),
		bpf.AllocVarSampleBytes:    t.cfg.SampleBytes,
		bpf.AllocVarSampleG:        sampleTable(),
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return fmt.Errorf("load BPF programs: %w", err)
	}
	for i, f := range v2 {
		if err := t.objs.Cgroups.Put(uint32(i), f); err != nil {
			return fmt.Errorf("set cgroup filter: %w", err)
		}
	}
	r, err := ringbuf.NewReader(t.objs.Events)
	if err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	t.reader = r
	return nil
}

// rateBudget splits the event-rate limit between the CPUs, which count their
// own allocations.
func rateBudget(perSecond uint64) uint64 {
	cpus, err := ebpf.PossibleCPU()
	if err != nil || cpus < 1 {
		cpus = 1
	}
	return max(perSecond/uint64(cpus), 1)
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// attachLifecycle attaches the fork, exec and exit tracepoints, the munmap
// and mmap system calls' (a process that unmaps code), and with Mmap the
// anonymous mmap and munmap hooks.
func (t *Tracer) attachLifecycle() error {
	progs := []*ebpf.Program{t.objs.ProcessFork, t.objs.ProcessExec, t.objs.ProcessExit}
	if t.cfg.Mmap {
		progs = append(progs, t.objs.MmapExit, t.objs.MunmapEnter)
	}
	for _, p := range progs {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return fmt.Errorf("attach %s: %w", p, err)
		}
		t.links = append(t.links, l)
	}
	if mounted, err := mountTracefs(); err != nil {
		t.log.Warn("no tracefs for the munmap and mmap tracepoints", "err", err)
	} else if mounted {
		t.log.Info("mounted tracefs for the munmap and mmap tracepoints", "dir", tracefsDir)
	}
	for name, p := range map[string]*ebpf.Program{
		"sys_enter_munmap": t.objs.CodeUnmapEnter, "sys_exit_munmap": t.objs.CodeUnmapExit,
		"sys_enter_mmap": t.objs.CodeMapEnter, "sys_exit_mmap": t.objs.CodeMapExit,
	} {
		l, err := link.Tracepoint("syscalls", name, p, nil)
		if err != nil {
			t.log.Warn("not watching code being unmapped: a library loaded in place of an unloaded one may be named wrongly", "tracepoint", name, "err", err)
			continue
		}
		t.links = append(t.links, l)
	}
	return nil
}

// traceCgroups traces the cgroups' current members; members of v1 cgroups
// are added to the kernel side's targets, v2 ones are matched in the kernel.
func (t *Tracer) traceCgroups(cgroups []cgroupTarget) error {
	for _, cg := range cgroups {
		pids, err := cg.members()
		if err != nil {
			return err
		}
		for _, pid := range pids {
			t.traceRunning(pid, !cg.v2)
		}
		t.log.Info("tracing cgroup", "path", cg.path, "v2", cg.v2, "processes", len(pids))
	}
	return nil
}

// traceAll traces every process running now; those that start later use
// allocators already probed or are probed at their exec.
func (t *Tracer) traceAll() {
	procs, err := t.fs.AllProcs()
	if err != nil {
		t.log.Warn("list processes", "err", err)
		return
	}
	for _, p := range procs {
		if p.PID != os.Getpid() && !kernelThread(p) {
			t.traceRunning(p.PID, false)
		}
	}
	t.log.Info("tracing all processes", "running", len(procs), "allocators", t.attach.Probed())
}

// traceRunning traces a process found running in a cgroup or on the host:
// it probes the allocators the process maps, and with add makes it a
// target of the kernel side, which would not match it otherwise. Processes
// that exit meanwhile or have no allocator are skipped.
func (t *Tracer) traceRunning(pid int, add bool) {
	if t.startImage(identify(t.cfg.ProcRoot, uint32(pid))) {
		return
	}
	if _, err := t.attach.Process(pid); err != nil {
		t.log.Debug("skip process", "pid", pid, "err", err)
		return
	}
	if add {
		if err := t.addTarget(pid); err != nil {
			t.log.Warn("register process", "pid", pid, "err", err)
		}
	}
}

// addTarget makes the kernel side trace pid.
func (t *Tracer) addTarget(pid int) error {
	if err := t.objs.Targets.Put(uint32(pid), uint8(1)); err != nil {
		return fmt.Errorf("register pid %d: %w", pid, err)
	}
	return t.recheckTargets()
}

// recheckTargets makes the kernel side find again, at each thread's next probe,
// whether its process is traced: after a change to the targets or
// exclusions, and at each poll for processes that moved between cgroups.
func (t *Tracer) recheckTargets() error {
	t.epoch++
	if err := t.objs.Epoch.Set(t.epoch); err != nil {
		return fmt.Errorf("set epoch: %w", err)
	}
	return nil
}

// startImage starts the record of image p, judged by the policy: a denied
// image has its events dropped, in the kernel too. An image mtrace could
// not identify (gone before it was looked at) is denied while a deny rule
// is in force (see policy.Check). The callers then read the files it maps,
// for the symbolizer, with attach.Process or startUnseen.
func (t *Tracer) startImage(p identity) (denied bool) {
	err := t.cfg.Policy.Check(p.target())
	t.agg.Start(p.pid, p.names(), err != nil)
	if err != nil {
		t.refuse(p.pid, p.exe, err, false)
	}
	return err != nil
}

// startUnseen starts the record of a process first seen by its events,
// where nothing attaches to it: the symbolizer reads the files it maps
// now, while it runs.
func (t *Tracer) startUnseen(pid uint32) (denied bool) {
	if t.startImage(identify(t.cfg.ProcRoot, pid)) {
		return true
	}
	if err := t.sym.Learn(int(pid)); err != nil {
		t.log.Debug("read mappings", "pid", pid, "err", err)
	}
	return false
}

// refuse has the kernel side drop the events of denied image pid, unless
// it drops them already (excluded), and says so.
func (t *Tracer) refuse(pid uint32, exe string, reason error, excluded bool) {
	if !excluded {
		if err := t.exclude(pid); err != nil {
			t.log.Warn("exclude process", "pid", pid, "err", err)
		}
	}
	t.log.Debug("skip process", "pid", pid, "exe", exe, "reason", reason)
}

// exclude makes the kernel side drop pid's events, unless it does already
// (it keeps an exclusion across exec).
func (t *Tracer) exclude(pid uint32) error {
	var excluded uint8
	if t.objs.Excluded.Lookup(pid, &excluded) == nil {
		return nil
	}
	if err := t.objs.Excluded.Put(pid, uint8(1)); err != nil {
		return fmt.Errorf("exclude pid %d: %w", pid, err)
	}
	if err := t.recheckTargets(); err != nil {
		return err
	}
	t.log.Debug("exclude process in the kernel", "pid", pid)
	return nil
}

// readmit lifts pid's exclusion, if the kernel holds one, once the policy
// has allowed the image it now runs: one exec'd by a denied process, or the
// child of one forked before that image was judged. A failure is logged:
// the process then stays excluded, which loses its counts, never a secret.
func (t *Tracer) readmit(pid uint32) {
	var excluded uint8
	if t.objs.Excluded.Lookup(pid, &excluded) != nil {
		return
	}
	err := t.objs.Excluded.Delete(pid)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		err = nil
	}
	if err == nil {
		err = t.recheckTargets()
	}
	if err != nil {
		t.log.Warn("trace process again", "pid", pid, "err", err)
		return
	}
	// Said once the kernel traces it again: its threads' cached verdicts are stale by now.
	t.log.Debug("trace process again", "pid", pid)
}

// cgroupPath returns the path of the cgroup v2 with the given id, looking
// each id up in the cgroup tree once.
func (t *Tracer) cgroupPath(id uint64) string {
	path, ok := t.cgroupIDs[id]
	if !ok {
		path = cgroupByID(id) // "" is kept too: a cgroup v2 id is never reused
		t.cgroupIDs[id] = path
	}
	return path
}

// tracePid traces a running process, a pid target, until it exits.
func (t *Tracer) tracePid(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("trace pid %d: not a process id", pid)
	}
	pidfd, err := pidfdOpen(pid)
	if err != nil {
		return err
	}
	judged := identify(t.cfg.ProcRoot, uint32(pid))
	if err := t.cfg.Policy.Check(judged.target()); err != nil {
		closeFD(pidfd)
		return fmt.Errorf("refuse to trace: %w", err)
	}
	if t.avoidSandboxed && judged.sandboxed {
		closeFD(pidfd)
		return fmt.Errorf("refuse to trace pid %d: %w", pid, errSandboxed)
	}
	if _, err := t.attach.Process(pid); err != nil {
		closeFD(pidfd)
		return fmt.Errorf("trace pid %d: %w", pid, err)
	}
	if err := t.addTarget(pid); err != nil {
		closeFD(pidfd)
		return err
	}
	p := identify(t.cfg.ProcRoot, uint32(pid))
	t.startImage(p)
	t.log.Info("tracing", "pid", pid, "exe", p.exe)
	t.exited.Add(1)
	go t.watch(pidfd)
	return nil
}

// Close detaches every probe and releases every kernel resource. It is safe
// to call more than once and on a nil Tracer.
func (t *Tracer) Close() error {
	if t == nil {
		return nil
	}
	var errs []error
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	if t.cmd != nil {
		errs = append(errs, t.endCommand())
	}
	// The probes and the lifecycle links detach at once: each detach waits
	// for a kernel grace period, and concurrent detaches share them.
	var probesErr error
	detached := make(chan struct{})
	go func() { probesErr = t.attach.Close(); close(detached) }()
	errs = append(errs, attach.CloseLinks(t.links))
	<-detached
	errs = append(errs, probesErr)
	t.links = nil
	if t.budget != nil {
		if t.budget.stats != nil {
			errs = append(errs, t.budget.stats.Close())
		}
		t.budget = nil
	}
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
		t.reader = nil
	}
	errs = append(errs, t.objs.Close())
	t.objs = bpf.AllocObjects{}
	return errors.Join(errs...)
}

// probe names the allocation function of probe id and the module that
// defines it; "" for an id not in use.
func (t *Tracer) probe(id uint16) (function, module string) {
	function, module, _ = t.attach.Probe(id)
	return function, module
}

// programs returns the probes' programs; the session program only where the kernel has sessions.
func (t *Tracer) programs() attach.Programs {
	p := attach.Programs{Enter: t.objs.AllocEnter, Exit: t.objs.AllocExit}
	if t.session {
		p.Session = t.objs.AllocSession
	}
	return p
}
