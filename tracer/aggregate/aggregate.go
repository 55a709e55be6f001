package aggregate

import (
	"time"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
)

// Stacks are the stacks the kernel holds, by the hash its events carry.
type Stacks interface {
	// Frames returns the frames stored under hash; nil if there are none.
	Frames(hash uint64) []symbolize.Location
	// Forget deletes the frames stored under hash, which no event uses any more.
	Forget(hash uint64)
}

// Symbolizer names stack frames; *symbolize.Symbolizer is one.
type Symbolizer interface {
	Frames(locs []symbolize.Location) []symbolize.Frame
}

// Config says what an Aggregate reads from and within which limits.
type Config struct {
	// MaxExitedProcesses, MaxStacks and MaxTargets are the policy's limits
	// of the same names (see Fold and Report).
	MaxExitedProcesses, MaxStacks, MaxTargets int
	Stacks                                    Stacks
	Symbolizer                                Symbolizer
	// Probe names the allocation function of a probe id and the module that
	// defines it; "" for an id it does not know.
	Probe func(id uint16) (function, module string)
	// Elapsed is the time since tracing started, for timelines.
	Elapsed func() time.Duration
}

// Names are what names a process image in a report: its executable path,
// argv[0] (never the arguments after it) and cgroup.
type Names struct {
	Exe, Argv0, Cgroup string
}

// Event is one allocation or free of a process. A free carries the probe,
// stack and size of the allocation it frees (matched in the kernel), so the
// order in which events arrive does not matter.
type Event struct {
	Pid    uint32
	Free   bool   // a free; else an allocation
	Probe  uint16 // the allocation function called
	Stack  uint64 // hash of the stack it was called from; 0 if unknown
	Size   uint64 // bytes allocated
	Weight uint32 // how many allocations it stands for when sampled; 0 counts as 1
	Age    uint64 // of a free: how long the allocation lived, in ns
}

// Ended is a process image that exec'd or exited, as the kernel's live map
// keys its allocations: by tgid and generation.
type Ended struct{ Pid, Gen uint32 }

// Aggregate holds the records of every process image of a run. It is not
// safe for concurrent use: one goroutine, the tracer's reader, feeds it.
type Aggregate struct {
	cfg     Config
	live    map[uint32]*image // the current image of each process seen
	done    []*image          // images that exec'd or exited
	retired retiredStacks     // stacks of the images in done
	ended   []Ended           // images that ended and may still have allocations in the kernel's live map
	folded  map[string]*image // exited images folded together, by executable
	spilled int               // aggregates of theirs summed under otherStack, past max_stacks
	skipped int               // images the policy denied
	allocs  uint64            // allocation events received
	byExe   map[string]*sink.Counts
}

// New returns an empty Aggregate.
func New(cfg Config) *Aggregate {
	return &Aggregate{
		cfg:     cfg,
		live:    make(map[uint32]*image),
		folded:  make(map[string]*image),
		byExe:   make(map[string]*sink.Counts),
		retired: newRetiredStacks(),
	}
}

// Start starts the record of pid's current image, named n, in place of any
// record of pid that has not ended. A denied image (the policy does not
// allow tracing it) has its events dropped, and counts as skipped.
func (a *Aggregate) Start(pid uint32, n Names, denied bool) {
	p := newImage(pid)
	p.Names = n
	a.live[pid] = p
	if denied {
		a.deny(p)
	} else {
		p.totals = a.exeTotals(n.Exe)
	}
}

// Image returns the names of pid's current image and whether it is denied;
// ok is false if pid has no current image on record.
func (a *Aggregate) Image(pid uint32) (n Names, denied, ok bool) {
	p := a.live[pid]
	if p == nil {
		return Names{}, false, false
	}
	return p.Names, p.denied, true
}

// Add accounts one allocation or free of pid's current image, unless the
// image is denied. It allocates only for a stack the image has not seen.
// It reports false, and counts nothing, if pid has no current image on
// record: the caller starts one and adds the event again.
func (a *Aggregate) Add(e Event) bool {
	p := a.live[e.Pid]
	if p == nil {
		return false
	}
	if !p.denied {
		p.add(e)
		if !e.Free {
			a.allocs++
		}
	}
	return true
}

// Exec ends the record of pid's image at its exec (generation gen); the
// caller starts the next one with Start once it has named it.
func (a *Aggregate) Exec(pid, gen uint32) {
	a.retire(pid, false)
	a.ended = append(a.ended, Ended{pid, gen})
}

// Exit ends the record of pid's image at its exit (generation gen).
func (a *Aggregate) Exit(pid, gen uint32) {
	a.retire(pid, true)
	a.ended = append(a.ended, Ended{pid, gen})
}

// Fork starts the record of a forked child: it runs its parent's image,
// with the same names and verdict. It reports false, and starts nothing, if
// the parent has no current image on record.
func (a *Aggregate) Fork(pid, parent uint32) bool {
	a.retire(pid, false)
	pp := a.live[parent]
	if pp == nil {
		return false
	}
	p := newImage(pid)
	p.Names, p.totals = pp.Names, pp.totals
	a.live[pid] = p
	if pp.denied {
		a.deny(p)
	}
	return true
}

// deny drops p's events from now on and counts it as skipped.
func (a *Aggregate) deny(p *image) {
	p.denied = true
	a.skipped++
}

// retire ends the record of pid's current image; an image that allocated
// nothing is not kept.
func (a *Aggregate) retire(pid uint32, exited bool) {
	p := a.live[pid]
	if p == nil {
		return
	}
	p.exited = exited
	p.sample(a.cfg.Elapsed().Seconds())
	if len(p.stacks) > 0 {
		a.retireStacks(p)
		a.done = append(a.done, p)
	}
	delete(a.live, pid)
}

// Ended returns the images that ended and may still have allocations in
// the kernel's live map.
func (a *Aggregate) Ended() []Ended { return a.ended }

// Swept replaces the images Ended returns by those whose allocations still
// wait in the kernel's live map after a sweep (young ones, for a leak count).
func (a *Aggregate) Swept(waiting []Ended) { a.ended = waiting }
