package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/symbolize"
)

// errNoAllocator means a process has mapped no file that defines malloc and free yet.
var errNoAllocator = errors.New("no allocator (malloc and free) mapped")

// errNoLoader means a process has no allocator and no dynamic loader that could map one.
var errNoLoader = errors.New("no allocator (malloc and free) in a static executable")

// findAllocator returns the first executable mapping of pid whose file
// defines malloc and free: a static executable or the C library. If there is
// none, the error says whether a dynamic loader may still map one.
func (t *Tracer) findAllocator(pid int) (symbolize.Mapping, error) {
	maps, err := symbolize.ReadMaps(t.fs, pid)
	if err != nil {
		return symbolize.Mapping{}, err
	}
	dynamic := false
	for _, m := range maps {
		mod, err := t.cfg.Symbolizer.Module(pid, m)
		if err != nil {
			continue
		}
		if mod.Defines("malloc") && mod.Defines("free") {
			return m, nil
		}
		dynamic = dynamic || mod.Dynamic()
	}
	if !dynamic {
		return symbolize.Mapping{}, errNoLoader
	}
	return symbolize.Mapping{}, errNoAllocator
}

// probe attaches the allocation probes to the file behind mapping m of pid,
// once per file.
func (t *Tracer) probe(pid int, m symbolize.Mapping) error {
	key := fileKey{m.Dev, m.Inode}
	if _, ok := t.allocators[key]; ok {
		return nil
	}
	f, err := symbolize.OpenMapped(t.cfg.ProcRoot, pid, m)
	if err != nil {
		return err
	}
	path := f.Name()
	f.Close()
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return fmt.Errorf("open allocator %s: %w", m.Path, err)
	}
	for _, p := range []struct {
		symbol      string
		enter, exit *ebpf.Program
	}{
		{"malloc", t.objs.MallocEnter, t.objs.MallocExit},
		{"calloc", t.objs.CallocEnter, t.objs.CallocExit},
		{"realloc", t.objs.ReallocEnter, t.objs.ReallocExit},
		{"free", t.objs.FreeEnter, nil},
	} {
		if err := t.attachPair(ex, p.symbol, p.enter, p.exit); err != nil {
			return fmt.Errorf("%w in %s", err, m.Path)
		}
	}
	t.allocators[key] = m.Path
	t.log.Debug("probes attached", "allocator", m.Path)
	return nil
}

// attachPair attaches an entry uprobe and, if exit is set, a uretprobe on
// symbol; if the uretprobe fails the uprobe is rolled back.
func (t *Tracer) attachPair(ex *link.Executable, symbol string, enter, exit *ebpf.Program) error {
	in, err := ex.Uprobe(symbol, enter, nil)
	if err != nil {
		return fmt.Errorf("attach uprobe %s: %w", symbol, err)
	}
	if exit != nil {
		out, err := ex.Uretprobe(symbol, exit, nil)
		if err != nil {
			return errors.Join(fmt.Errorf("attach uretprobe %s: %w", symbol, err), in.Close())
		}
		t.links = append(t.links, out)
	}
	t.links = append(t.links, in)
	return nil
}

// register makes the kernel side trace pid.
func (t *Tracer) register(pid int) error {
	if err := t.objs.Targets.Put(uint32(pid), uint8(1)); err != nil {
		return fmt.Errorf("register pid %d: %w", pid, err)
	}
	return nil
}

// track records a target whose allocator is attached and snapshots its mappings.
func (t *Tracer) track(pid int, allocator symbolize.Mapping) {
	p := &process{pid: pid, allocator: allocator.Path}
	if proc, err := t.fs.Proc(pid); err == nil {
		p.exe, _ = proc.Executable()
	}
	if err := t.cfg.Symbolizer.Snapshot(pid); err != nil {
		t.log.Warn("snapshot mappings", "pid", pid, "err", err)
	}
	t.procs[uint32(pid)] = p
	t.log.Info("tracing", "pid", pid, "exe", p.exe, "allocator", p.allocator)
}

// attachPid traces a running process until it exits.
func (t *Tracer) attachPid(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("trace pid %d: not a process id", pid)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("trace pid %d: no such process", pid)
		}
		return fmt.Errorf("trace pid %d: %w", pid, err)
	}
	m, err := t.findAllocator(pid)
	if err == nil {
		err = t.probe(pid, m)
	}
	if err == nil {
		err = t.register(pid)
	}
	if err != nil {
		unix.Close(pidfd)
		return fmt.Errorf("trace pid %d: %w", pid, err)
	}
	t.track(pid, m)
	t.exited.Add(1)
	go t.watch(pidfd)
	return nil
}

// watch waits until the process behind pidfd exits or the tracer closes.
func (t *Tracer) watch(pidfd int) {
	defer t.exited.Done()
	defer unix.Close(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 200)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			return
		}
		select {
		case <-t.stop:
			return
		default:
		}
	}
}
