package sink

// Schema is the version of the JSON report layout; it changes when a field
// changes meaning or goes away.
const Schema = 1

// Report is the aggregate result of one run, as written out.
type Report struct {
	Schema          int     `json:"schema"`
	DurationSeconds float64 `json:"duration_seconds"`
	LostEvents      uint64  `json:"lost_events"`
	// LostAllocations are the allocation events among LostEvents: allocation
	// events, lost allocations, sampled out and unsampled add up to every
	// allocation the targets made.
	LostAllocations uint64  `json:"lost_allocations"`
	Dropped         Dropped `json:"dropped"`
	// AllocationEvents counts the allocation events mtrace received.
	AllocationEvents uint64 `json:"allocation_events"`
	// SampledOut counts allocations left out above the event-rate limit; when
	// it is not 0, counts are estimates from the weighted allocations kept.
	SampledOut uint64 `json:"sampled_out"`
	// SampleBytes is the byte-sampling rate (--sample-bytes), 0 if off: an
	// allocation of S bytes was kept with chance 1 - e^(-S/SampleBytes), and
	// counts are estimates weighted by the inverse. Unsampled counts the
	// allocations it left out.
	SampleBytes uint64 `json:"sample_bytes,omitempty"`
	Unsampled   uint64 `json:"unsampled,omitempty"`
	// LeakMinAgeSeconds is the --min-age of a run with --leaks: live
	// allocations at least this old at the end count as leaked.
	LeakMinAgeSeconds float64 `json:"leak_min_age_seconds,omitempty"`
	// SkippedProcesses counts process images the policy did not allow to be traced.
	SkippedProcesses int `json:"skipped_processes"`
	// TrimmedStacks counts the smaller stacks summed into each process's
	// "[other stacks]" so that the report fit max_output_bytes.
	TrimmedStacks int `json:"trimmed_stacks,omitempty"`
	// FoldedProcesses counts the process images summed into the entries of
	// their executables (pid 0) to bound mtrace's memory, in all.
	FoldedProcesses int `json:"folded_processes,omitempty"`
	// FoldedStacks counts the stacks of folded processes summed into their
	// entry's "[other stacks]" past the max_stacks distinct stacks that
	// folded entries keep.
	FoldedStacks int       `json:"folded_stacks,omitempty"`
	Processes    []Process `json:"processes"`
}

// Dropped counts what was not recorded besides lost events.
type Dropped struct {
	LiveMapFull  uint64 `json:"live_map_full"`
	StackMapFull uint64 `json:"stack_map_full"`
	StackErrors  uint64 `json:"stack_errors"`
	CallsFull    uint64 `json:"calls_full"`
	Malformed    uint64 `json:"malformed_records"`
	// TargetsFull counts children of traced processes left untraced because
	// max_targets processes were traced by pid already.
	TargetsFull uint64 `json:"targets_full,omitempty"`
	// Unheard counts processes excluded in the kernel because their fork or
	// exec event was lost while the policy could deny their image.
	Unheard uint64 `json:"unheard_excluded,omitempty"`
}

// Counts are allocation totals; live = allocated and not freed at the end.
type Counts struct {
	Allocs      uint64 `json:"allocs"`
	AllocBytes  uint64 `json:"alloc_bytes"`
	Frees       uint64 `json:"frees"`
	FreeBytes   uint64 `json:"free_bytes"`
	LiveObjects uint64 `json:"live_objects"`
	LiveBytes   uint64 `json:"live_bytes"`
	// LeakedObjects and LeakedBytes (with --leaks): live at the end and older than --min-age.
	LeakedObjects uint64 `json:"leaked_objects,omitempty"`
	LeakedBytes   uint64 `json:"leaked_bytes,omitempty"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Allocs += o.Allocs
	c.AllocBytes += o.AllocBytes
	c.Frees += o.Frees
	c.FreeBytes += o.FreeBytes
	c.LiveObjects += o.LiveObjects
	c.LiveBytes += o.LiveBytes
	c.LeakedObjects += o.LeakedObjects
	c.LeakedBytes += o.LeakedBytes
}

// SetLive sets LiveObjects and LiveBytes to what was allocated and not
// freed, 0 where events lost on the way would make them negative.
func (c *Counts) SetLive() {
	c.LiveObjects, c.LiveBytes = floorSub(c.Allocs, c.Frees), floorSub(c.AllocBytes, c.FreeBytes)
}

// minus is c less o, field by field, never below zero.
func (c Counts) minus(o Counts) Counts {
	return Counts{
		Allocs: floorSub(c.Allocs, o.Allocs), AllocBytes: floorSub(c.AllocBytes, o.AllocBytes),
		Frees: floorSub(c.Frees, o.Frees), FreeBytes: floorSub(c.FreeBytes, o.FreeBytes),
		LiveObjects: floorSub(c.LiveObjects, o.LiveObjects), LiveBytes: floorSub(c.LiveBytes, o.LiveBytes),
		LeakedObjects: floorSub(c.LeakedObjects, o.LeakedObjects), LeakedBytes: floorSub(c.LeakedBytes, o.LeakedBytes),
	}
}

// floorSub is a - b, or 0 if b is larger.
func floorSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// Process is one traced process image with its totals and stacks. A
// process that execs appears once per image. It is named by its pid,
// executable and argv[0] only, never by its other arguments.
type Process struct {
	Pid    int    `json:"pid"`
	Exe    string `json:"exe"`
	Argv0  string `json:"argv0"`
	Cgroup string `json:"cgroup"`
	Exited bool   `json:"exited"`
	// FoldedProcesses, if not 0, says this entry sums that many processes of
	// Exe, folded together to bound mtrace's memory: exited ones past the
	// policy's max_exited_processes (or four times as many stacks), running
	// ones past max_targets (then Exited is false); its Pid is 0.
	FoldedProcesses int      `json:"folded_processes,omitempty"`
	Allocator       string   `json:"allocator"`  // the module that served most allocations
	Allocators      []string `json:"allocators"` // every module whose allocation functions it called
	Totals          Counts   `json:"totals"`
	Stacks          []Stack  `json:"stacks"`
	// SizeHistogram counts allocations by size, LifetimeHistogram frees by
	// how long (ns) the allocation lived, in power-of-two buckets.
	SizeHistogram     []Bucket `json:"size_histogram,omitempty"`
	LifetimeHistogram []Bucket `json:"lifetime_histogram,omitempty"`
	// Timeline is the memory in use (allocated while traced, not freed) over time.
	Timeline []Point `json:"timeline,omitempty"`
}

// Bucket of a histogram: how many values were below Below (and at least half of it).
type Bucket struct {
	Below uint64 `json:"below"`
	Count uint64 `json:"count"`
}

// Point of a timeline.
type Point struct {
	Seconds   float64 `json:"seconds"`
	LiveBytes uint64  `json:"live_bytes"`
}

// Stack is one allocation stack: the allocation function first, then its
// direct caller, and so on outwards.
type Stack struct {
	Frames []Frame `json:"frames"`
	Counts
}

// Frame is one function of a stack. Offset is where in the module (a file
// offset, not an address) the frame returns to, for tools like addr2line.
type Frame struct {
	Function string `json:"function"`
	Module   string `json:"module"`
	BuildID  string `json:"build_id,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Inlined  bool   `json:"inlined,omitempty"`
	Offset   uint64 `json:"offset,omitempty"`
}
