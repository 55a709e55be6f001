package tracer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/prometheus/procfs"

	"github.com/mtrace/mtrace/bpf"
)

// Tracer is one run of mtrace: loaded programs, attached probes, targets.
type Tracer struct {
	cfg    Config
	log    *slog.Logger
	fs     procfs.FS
	objs   bpf.AllocObjects
	reader *ringbuf.Reader
	links  []link.Link

	allocators map[fileKey]string // allocator files probed, by identity, to the path used
	procs      map[uint32]*process
	cmd        *exec.Cmd
	cmdDone    chan struct{} // closed when cmd has exited and was reaped

	exited  sync.WaitGroup // one count per target until it exits
	stop    chan struct{}  // closed by Close: ends exit watchers
	started time.Time
	agg     *aggregator
}

type fileKey struct{ dev, inode uint64 }

// process is what the tracer knows of one target.
type process struct {
	pid       int
	exe       string
	allocator string
	seen      bool // an event arrived: its mappings were refreshed
}

// New loads the BPF programs, attaches them to the targets' allocators and
// starts Command if there is one. On error it releases what it built.
func New(ctx context.Context, cfg Config) (t *Tracer, err error) {
	if len(cfg.Pids) == 0 && len(cfg.Command) == 0 {
		return nil, errors.New("no target: give a pid or a command")
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
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
	fs, err := procfs.NewFS(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.ProcRoot, err)
	}
	t = &Tracer{
		cfg:        cfg,
		log:        cfg.Logger,
		fs:         fs,
		allocators: make(map[fileKey]string),
		procs:      make(map[uint32]*process),
		stop:       make(chan struct{}),
		agg:        newAggregator(),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
			t = nil
		}
	}()
	if err := t.load(); err != nil {
		return t, err
	}
	for _, pid := range cfg.Pids {
		if err := t.attachPid(pid); err != nil {
			return t, err
		}
	}
	if len(cfg.Command) > 0 {
		if err := t.spawn(ctx, cfg.Command); err != nil {
			return t, err
		}
	}
	t.started = time.Now()
	return t, nil
}

// load loads the BPF objects with the configured limits and opens the ring buffer.
func (t *Tracer) load() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise memlock limit: %w", err)
	}
	spec, err := bpf.LoadAlloc()
	if err != nil {
		return fmt.Errorf("load BPF spec: %w", err)
	}
	l := t.cfg.Limits
	spec.Maps[bpf.AllocMapEvents].MaxEntries = l.RingBufferBytes
	spec.Maps[bpf.AllocMapLive].MaxEntries = l.MaxLive
	spec.Maps[bpf.AllocMapStacks].MaxEntries = l.MaxStacks
	spec.Maps[bpf.AllocMapTargets].MaxEntries = l.MaxTargets
	if err := spec.Variables[bpf.AllocVarWakeupBytes].Set(uint64(l.RingBufferBytes / 32)); err != nil {
		return fmt.Errorf("set wakeup threshold: %w", err)
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return fmt.Errorf("load BPF programs: %w", verr)
		}
		return fmt.Errorf("load BPF programs: %w", err)
	}
	r, err := ringbuf.NewReader(t.objs.Events)
	if err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	t.reader = r
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
	for i := len(t.links) - 1; i >= 0; i-- {
		errs = append(errs, t.links[i].Close())
	}
	t.links = nil
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
		t.reader = nil
	}
	errs = append(errs, t.objs.Close())
	t.objs = bpf.AllocObjects{}
	return errors.Join(errs...)
}
