package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/aggregate"
)

// pollInterval is how often the reader looks at the ring buffer when the
// kernel has not woken it (the BPF side wakes it only once enough data
// waits), and how often it looks for new processes it must attach to.
const pollInterval = 100 * time.Millisecond

// discoveryTries is how many poll intervals a new image is looked at for
// allocators its dynamic loader maps after exec.
const discoveryTries = 3

// Run reads events and hands them to the aggregate until the pid and
// command targets have exited (never, when tracing cgroups or the host) or
// ctx is done, then drains what is left in the ring buffer and returns the
// report. If mtrace cannot stay within its CPU budget, or the ring buffer
// cannot be read, it stops early: it returns the report so far with the error.
func (t *Tracer) Run(ctx context.Context) (*sink.Report, error) {
	if err := t.startBudget(); err != nil {
		return nil, err
	}
	var stopErr error
	targetsDone := make(chan struct{})
	if t.cfg.waitsForTargets() {
		go func() { t.exited.Wait(); close(targetsDone) }()
	}
	var rec ringbuf.Record
	var e record
	stopping := false
	for {
		deadline := time.Now().Add(pollInterval)
		if stopping {
			deadline = time.Now() // read what is in the ring, then stop
		}
		t.reader.SetDeadline(deadline)
		for n := 0; ; n++ {
			// A ring that never empties must not keep the loop from its other work.
			if n%4096 == 4095 && time.Now().After(deadline) {
				break
			}
			err := t.reader.ReadInto(&rec)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				r, rerr := t.report()
				return r, errors.Join(fmt.Errorf("read ring buffer: %w", err), rerr, stopErr)
			}
			if decodeRecord(rec.RawSample, &e) != nil {
				t.malformed++
				continue
			}
			t.handle(&e)
		}
		if stopping {
			t.metrics.taken = time.Time{} // the last snapshot holds everything
			t.snapshot()
			if t.cfg.Leaks {
				if err := t.leaks(t.cfg.LeakAge); err != nil {
					stopErr = errors.Join(stopErr, err)
				}
			}
			r, err := t.report()
			return r, errors.Join(err, stopErr)
		}
		t.poll()
		if err := t.sweep(); err != nil {
			t.log.Warn("remove allocations of ended processes from the kernel", "err", err)
		}
		t.agg.Fold()
		t.snapshot()
		select {
		case reply := <-t.requests:
			r, err := t.report()
			if err != nil {
				t.log.Warn("intermediate report", "err", err)
			}
			reply <- r
		default:
		}
		if err := t.checkBudget(); err != nil {
			stopErr, stopping = err, true
			continue
		}
		select {
		case <-ctx.Done():
			stopping = true
		case <-targetsDone:
			stopping = true
		default:
		}
	}
}

// Snapshot returns the report so far of a Run in progress, without stopping
// it (within a poll interval); nil if Run has ended or ctx is done first.
func (t *Tracer) Snapshot(ctx context.Context) *sink.Report {
	reply := make(chan *sink.Report, 1)
	select {
	case t.requests <- reply:
	case <-ctx.Done():
		return nil
	}
	select {
	case r := <-reply:
		return r
	case <-ctx.Done():
		return nil
	}
}

// errParentDenied is why the child of a denied process is skipped.
var errParentDenied = errors.New("its parent is denied")

// handle accounts one decoded record.
func (t *Tracer) handle(e *record) {
	switch e.Op {
	case uint8(bpf.AllocOpOP_ALLOC), uint8(bpf.AllocOpOP_FREE):
		if ev := allocEvent(e); !t.agg.Add(ev) {
			t.startUnseen(e.Pid)
			t.agg.Add(ev)
		}
	case uint8(bpf.AllocOpOP_EXEC):
		file := eventFile(&e.File)
		t.agg.Exec(e.Pid, e.File.Gen)
		p := identify(t.cfg.ProcRoot, e.Pid)
		current := p.exeInode == e.File.Ino
		if !current {
			// Gone, or exec'd again, before it was looked at: name it, and
			// learn its symbols, by the file and path the kernel saw; its
			// user is not known.
			id := location(file).File
			path := filePath(&e.File)
			p.exe, p.argv0, p.cgroup, p.uids = path, "", "", policy.OneUID(-1)
			if _, _, err := t.sym.File(path, id); err != nil {
				t.log.Debug("learn executable", "pid", e.Pid, "err", err)
			}
		}
		if p.cgroup == "" {
			p.cgroup = t.cgroupPath(e.File.Cgroup)
		}
		if t.startImage(p) {
			break
		}
		// The kernel keeps a denied process's exclusion across its exec:
		// lift it once the image it runs now is allowed. A process no
		// longer current is gone (its exit ends the exclusion) or has
		// exec'd again, and the exec event that follows judges that image
		// (if that event was lost, the kernel keeps it out as unheard).
		if current {
			t.readmit(e.Pid)
		}
		t.pending[e.Pid] = discoveryTries
		t.attach.Process(int(e.Pid))
	case uint8(bpf.AllocOpOP_FILE):
		// A file a stack runs through, named by the kernel: learn it by that
		// path, or if the path is not ours (a container's), through the
		// process; if it is gone from both, its frames keep its name.
		file := eventFile(&e.File)
		id := location(file).File
		path := filePath(&e.File)
		if _, _, err := t.sym.File(path, id); err != nil {
			t.sym.Learn(int(e.Pid))
			t.sym.Name(id, path)
		}
	case uint8(bpf.AllocOpOP_FORK):
		// The child runs its parent's image: it has the same names and
		// files, and the same verdict. The kernel excluded the child of an
		// excluded parent before it ran (and said so: the child may have
		// exited since); one forked before its parent was judged is
		// excluded now. A child the kernel excluded though user space
		// allows its parent inherited an exclusion the parent no longer
		// has (it exec'd an allowed image and forked before that image was
		// judged): what the child runs now is judged, and if allowed the
		// child is traced again. Should it have exec'd since, its exec
		// event, which follows, judges the new image before any of that
		// image's events; if that event was lost, the kernel keeps the
		// child out as unheard, whatever user space lifts.
		ppid := e.Fork.Parent
		excluded := forkExcluded(&e.Fork)
		forked := t.agg.Fork(e.Pid, ppid)
		names, denied, _ := t.agg.Image(e.Pid)
		if !forked || (excluded && !denied) {
			if !t.startUnseen(e.Pid) && excluded {
				t.readmit(e.Pid)
			}
			break
		}
		if denied {
			t.refuse(e.Pid, names.Exe, errParentDenied, excluded)
		}
	case uint8(bpf.AllocOpOP_EXIT):
		t.agg.Exit(e.Pid, e.Exit.Gen)
		delete(t.pending, e.Pid)
	}
}

// allocEvent is an OP_ALLOC or OP_FREE record as the aggregate counts it.
func allocEvent(e *record) aggregate.Event {
	a := &e.Alloc
	return aggregate.Event{Pid: e.Pid, Free: e.Op == uint8(bpf.AllocOpOP_FREE), Probe: a.Probe,
		Stack: a.Stack, Size: a.Size, Weight: a.Weight, Age: a.Age}
}

// poll attaches to allocators that new images mapped after their exec, and
// to processes that joined a polled cgroup v1; with cgroup v2 filters, it
// has the kernel side look again at which processes are in them.
func (t *Tracer) poll() {
	for pid, tries := range t.pending {
		if tries <= 1 {
			delete(t.pending, pid)
		} else {
			t.pending[pid] = tries - 1
		}
		t.attach.Process(int(pid))
	}
	for _, cg := range t.cgroupsV1 {
		pids, err := cg.members()
		if err != nil {
			continue
		}
		for _, pid := range pids {
			var registered uint8
			if t.objs.Targets.Lookup(uint32(pid), &registered) != nil {
				t.traceRunning(pid, true)
			}
		}
	}
	if len(t.cfg.Cgroups) > len(t.cgroupsV1) {
		if err := t.recheckTargets(); err != nil {
			t.log.Warn("look again at cgroup members", "err", err)
		}
	}
}
