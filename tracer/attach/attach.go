package attach

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/symbolize"
)

// Programs are what the probes run: an entry and a return program, and a
// session program where the kernel has uprobe sessions (nil otherwise).
type Programs struct{ Enter, Exit, Session *ebpf.Program }

// Config is what an Attacher works with.
type Config struct {
	ProcRoot   string
	Symbolizer *symbolize.Symbolizer // reads the files it probes, through descriptors
	Logger     *slog.Logger
	Programs   Programs // loaded from Spec
	Multi      bool     // attach with uprobe_multi links (kernel.Links)
	OnlyPids   bool     // only given pids are traced: each probe fires for its pid alone
}

// Attacher puts mtrace's probes on the allocators processes map and owns
// the links it makes: each allocation function of a file is probed once,
// for every process (or, with OnlyPids, once per pid), and known by a probe
// id that the events carry.
type Attacher struct {
	cfg    Config
	log    *slog.Logger
	links  []link.Link
	probes []probe             // by probe id
	probed map[probeScope]bool // files whose allocation functions are probed (false: attaching failed)
	// unprobed are the functions of probed files left unprobed, by why,
	// until a traced process maps them (warnUnprobed).
	unprobed map[symbolize.FileID]map[string][]string
	// plans are the planned probes of each file, planned once however many
	// pids it is attached for, and again if the file changes.
	plans map[symbolize.FileID]plan
}

// probe is what one probe id stands for: a function in a module.
type probe struct {
	function, module string
}

// New returns an Attacher that has attached nothing yet.
func New(cfg Config) *Attacher {
	return &Attacher{
		cfg:      cfg,
		log:      cfg.Logger,
		probed:   make(map[probeScope]bool),
		unprobed: make(map[symbolize.FileID]map[string][]string),
		plans:    make(map[symbolize.FileID]plan),
		// Probe id 0 is anonymous mmap, which the kernel side reports as MMAP_PROBE.
		probes: []probe{{function: "mmap (anonymous)", module: "[kernel]"}},
	}
}

// Probe returns the function and module probe id stands for; ok is false
// for an id no probe has.
func (a *Attacher) Probe(id uint16) (function, module string, ok bool) {
	if int(id) >= len(a.probes) {
		return "", "", false
	}
	return a.probes[id].function, a.probes[id].module, true
}

// Probed returns how many files (with OnlyPids, file and pid pairs)
// attaching was tried on.
func (a *Attacher) Probed() int {
	return len(a.probed)
}

// Close detaches every probe. It is safe to call more than once and on nil.
func (a *Attacher) Close() error {
	if a == nil {
		return nil
	}
	err := CloseLinks(a.links)
	a.links = nil
	return err
}

// CloseLinks detaches links all at once: each detach waits for a kernel
// grace period (about 100 ms here), and concurrent detaches share them.
func CloseLinks(links []link.Link) error {
	errs := make([]error, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Go(func() { errs[i] = l.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Spec returns the spec of mtrace's BPF objects with the probe programs set
// up for the links this kernel has (kernel.Links).
func Spec(multi, session bool) (*ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadAlloc()
	if err != nil {
		return nil, fmt.Errorf("load BPF spec: %w", err)
	}
	if multi {
		spec.Programs[bpf.AllocProgAllocEnter].AttachType = ebpf.AttachTraceUprobeMulti
		spec.Programs[bpf.AllocProgAllocExit].AttachType = ebpf.AttachTraceUprobeMulti
	}
	if !session {
		// Never attached then, and its kfunc would not load: an empty program stands in.
		spec.Programs[bpf.AllocProgAllocSession] = emptyProgram(bpf.AllocProgAllocSession, multi)
	}
	return spec, nil
}

// fdPath names the open file f by its descriptor.
func fdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}
