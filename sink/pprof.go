package sink

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"
)

// The pprof sample types mtrace writes, in order.
var sampleTypes = []*profile.ValueType{
	{Type: "alloc_objects", Unit: "count"},
	{Type: "alloc_space", Unit: "bytes"},
	{Type: "inuse_objects", Unit: "count"},
	{Type: "inuse_space", Unit: "bytes"},
}

// Comment keys for the run's metadata in a profile.
const (
	commentSchema  = "mtrace schema "
	commentLost    = "mtrace lost_events "
	commentLostA   = "mtrace lost_allocations "
	commentSampled = "mtrace sampled_out "
	commentRate    = "mtrace sample_bytes "
	commentUnsampl = "mtrace unsampled "
	commentEvents  = "mtrace allocation_events "
	commentSkipped = "mtrace skipped_processes "
	commentTrimmed = "mtrace trimmed_stacks "
	commentFolded  = "mtrace folded_processes "
	commentFoldedS = "mtrace folded_stacks "
	commentTargets = "mtrace targets_full "
)

// WritePprof writes the report as a gzipped pprof profile, the format go
// tool pprof, Pyroscope and Parca read: a sample per process and stack with
// alloc_objects, alloc_space, inuse_objects and inuse_space, labelled with
// pid, exe, allocator and cgroup. Locations are already symbolized; their
// addresses are offsets into their modules, never runtime addresses.
func WritePprof(w io.Writer, r *Report) error {
	p := &profile.Profile{
		SampleType:        sampleTypes,
		DefaultSampleType: "inuse_space",
		PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:            1,
		DurationNanos:     int64(r.DurationSeconds * float64(time.Second)),
		Comments: []string{
			commentSchema + strconv.Itoa(r.Schema),
			commentLost + strconv.FormatUint(r.LostEvents, 10),
			commentLostA + strconv.FormatUint(r.LostAllocations, 10),
			commentSampled + strconv.FormatUint(r.SampledOut, 10),
			commentRate + strconv.FormatUint(r.SampleBytes, 10),
			commentUnsampl + strconv.FormatUint(r.Unsampled, 10),
			commentEvents + strconv.FormatUint(r.AllocationEvents, 10),
			commentSkipped + strconv.Itoa(r.SkippedProcesses),
			commentTrimmed + strconv.Itoa(r.TrimmedStacks),
			commentFolded + strconv.Itoa(r.FoldedProcesses),
			commentFoldedS + strconv.Itoa(r.FoldedStacks),
			commentTargets + strconv.FormatUint(r.Dropped.TargetsFull, 10),
		},
	}
	b := &profileBuilder{p: p, mappings: map[string]*profile.Mapping{}, functions: map[Frame]*profile.Function{}, locations: map[string]*profile.Location{}}
	for _, proc := range r.Processes {
		b.mapping(proc.Exe, "") // the executables first: pprof names a profile after its first mapping
	}
	for _, proc := range r.Processes {
		for _, s := range proc.Stacks {
			sample := &profile.Sample{
				Value:    []int64{clamp(s.Allocs), clamp(s.AllocBytes), clamp(s.LiveObjects), clamp(s.LiveBytes)},
				Label:    map[string][]string{"exe": {proc.Exe}, "allocator": {proc.Allocator}, "argv0": {proc.Argv0}},
				NumLabel: map[string][]int64{"pid": {int64(proc.Pid)}},
			}
			if proc.Cgroup != "" {
				sample.Label["cgroup"] = []string{proc.Cgroup}
			}
			for _, group := range inlineGroups(s.Frames) {
				sample.Location = append(sample.Location, b.location(group))
			}
			p.Sample = append(p.Sample, sample)
		}
	}
	if err := p.CheckValid(); err != nil {
		return fmt.Errorf("write pprof profile: %w", err)
	}
	// Under Limited, the profile's inflated size counts against the limit
	// too, so that ReadPprof, which inflates no more, reads it back.
	zw := gzip.NewWriter(w)
	var raw io.Writer = zw
	if l, ok := w.(*limitWriter); ok {
		raw = &limitWriter{w: zw, left: l.max, max: l.max}
	}
	if err := errors.Join(p.WriteUncompressed(raw), zw.Close()); err != nil {
		return fmt.Errorf("write pprof profile: %w", err)
	}
	return nil
}

func clamp(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// inlineGroups splits frames into locations: inlined frames share their
// caller's location.
func inlineGroups(frames []Frame) [][]Frame {
	var groups [][]Frame
	var cur []Frame
	for _, f := range frames {
		cur = append(cur, f)
		if !f.Inlined {
			groups = append(groups, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

type profileBuilder struct {
	p         *profile.Profile
	mappings  map[string]*profile.Mapping
	functions map[Frame]*profile.Function
	locations map[string]*profile.Location
}

func (b *profileBuilder) mapping(module, buildID string) *profile.Mapping {
	m := b.mappings[module]
	if m == nil {
		m = &profile.Mapping{
			ID: uint64(len(b.p.Mapping) + 1), File: module, BuildID: buildID, Limit: math.MaxUint64,
			HasFunctions: true, HasFilenames: true, HasLineNumbers: true, HasInlineFrames: true,
		}
		b.mappings[module] = m
		b.p.Mapping = append(b.p.Mapping, m)
	}
	if m.BuildID == "" {
		m.BuildID = buildID
	}
	return m
}

func (b *profileBuilder) function(f Frame) *profile.Function {
	key := Frame{Function: f.Function, File: f.File}
	fn := b.functions[key]
	if fn == nil {
		fn = &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: f.Function, SystemName: f.Function, Filename: f.File}
		b.functions[key] = fn
		b.p.Function = append(b.p.Function, fn)
	}
	return fn
}

// location returns the location of one group of frames, innermost first.
func (b *profileBuilder) location(group []Frame) *profile.Location {
	var key strings.Builder
	for _, f := range group {
		fmt.Fprintf(&key, "%s\x00%s\x00%s\x00%d\x00%d\x01", f.Module, f.Function, f.File, f.Line, f.Offset)
	}
	if loc := b.locations[key.String()]; loc != nil {
		return loc
	}
	outer := group[len(group)-1]
	loc := &profile.Location{ID: uint64(len(b.p.Location) + 1), Mapping: b.mapping(outer.Module, outer.BuildID), Address: outer.Offset}
	for _, f := range group {
		loc.Line = append(loc.Line, profile.Line{Function: b.function(f), Line: int64(f.Line)})
	}
	b.locations[key.String()] = loc
	b.p.Location = append(b.p.Location, loc)
	return loc
}

// ReadPprof reads a profile mtrace wrote back into a report. A gzipped
// profile is inflated only if it inflates to at most limit bytes, which is
// measured first, keeping nothing: a small file that inflates without end
// costs no memory.
func ReadPprof(data []byte, limit int64) (*Report, error) {
	data, err := inflate(data, limit)
	if err != nil {
		return nil, fmt.Errorf("read pprof profile: %w", err)
	}
	if n := decodedSize(data); n > decodedLimit*limit {
		return nil, fmt.Errorf("read pprof profile: would take %d bytes decoded, more than %d times max_output_bytes", n, decodedLimit)
	}
	p, err := profile.ParseUncompressed(data)
	if err != nil {
		return nil, fmt.Errorf("read pprof profile: %w", err)
	}
	if len(p.SampleType) != len(sampleTypes) {
		return nil, errors.New("read pprof profile: not written by mtrace (sample types)")
	}
	for i, st := range p.SampleType {
		if st.Type != sampleTypes[i].Type || st.Unit != sampleTypes[i].Unit {
			return nil, errors.New("read pprof profile: not written by mtrace (sample types)")
		}
	}
	r := &Report{DurationSeconds: float64(p.DurationNanos) / float64(time.Second), Processes: []Process{}}
	for _, c := range p.Comments {
		for prefix, dst := range map[string]*uint64{commentLost: &r.LostEvents, commentLostA: &r.LostAllocations, commentSampled: &r.SampledOut,
			commentRate: &r.SampleBytes, commentUnsampl: &r.Unsampled, commentEvents: &r.AllocationEvents, commentTargets: &r.Dropped.TargetsFull} {
			if v, ok := strings.CutPrefix(c, prefix); ok {
				*dst, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		for prefix, dst := range map[string]*int{commentSchema: &r.Schema, commentSkipped: &r.SkippedProcesses, commentTrimmed: &r.TrimmedStacks,
			commentFolded: &r.FoldedProcesses, commentFoldedS: &r.FoldedStacks} {
			if v, ok := strings.CutPrefix(c, prefix); ok {
				*dst, _ = strconv.Atoi(v)
			}
		}
	}
	// A location is written once however many samples share it, and as
	// many frames as it has lines: the frames are counted against the limit
	// before they are made.
	frames, maxFrames := int64(0), decodedLimit*limit/int64(unsafe.Sizeof(Frame{}))
	byPid := map[int]*Process{}
	for _, s := range p.Sample {
		for _, loc := range s.Location {
			frames += int64(len(loc.Line))
		}
		if frames > maxFrames {
			return nil, fmt.Errorf("read pprof profile: more than %d frames, %d times max_output_bytes", maxFrames, decodedLimit)
		}
		// The encoder leaves out a label of 0: the pid of a folded entry.
		if len(s.Value) != len(sampleTypes) || len(s.NumLabel["pid"]) > 1 {
			return nil, errors.New("read pprof profile: a sample without mtrace's values and labels")
		}
		pid := 0
		if len(s.NumLabel["pid"]) == 1 {
			pid = int(s.NumLabel["pid"][0])
		}
		proc := byPid[pid]
		if proc == nil {
			proc = &Process{Pid: pid, Exe: first(s.Label["exe"]), Argv0: first(s.Label["argv0"]), Allocator: first(s.Label["allocator"]), Cgroup: first(s.Label["cgroup"])}
			if proc.Allocator != "" {
				proc.Allocators = []string{proc.Allocator}
			}
			byPid[pid] = proc
		}
		v := func(i int) uint64 { return uint64(max(s.Value[i], 0)) }
		st := Stack{Counts: Counts{Allocs: v(0), AllocBytes: v(1), LiveObjects: v(2), LiveBytes: v(3)}}
		st.Frees, st.FreeBytes = st.Allocs-min(st.LiveObjects, st.Allocs), st.AllocBytes-min(st.LiveBytes, st.AllocBytes)
		for _, loc := range s.Location {
			for i, l := range loc.Line {
				f := Frame{Inlined: i < len(loc.Line)-1, Line: int(l.Line), Offset: loc.Address}
				if l.Function != nil {
					f.Function, f.File = l.Function.Name, l.Function.Filename
				}
				if loc.Mapping != nil {
					f.Module, f.BuildID = loc.Mapping.File, loc.Mapping.BuildID
				}
				st.Frames = append(st.Frames, f)
			}
		}
		proc.Totals.Add(st.Counts)
		proc.Stacks = append(proc.Stacks, st)
	}
	for _, proc := range byPid {
		r.Processes = append(r.Processes, *proc)
	}
	sort.Slice(r.Processes, func(i, j int) bool { return r.Processes[i].Pid < r.Processes[j].Pid })
	return r, nil
}

// What a profile takes once decoded by the pprof package, at most: its
// records (samples with their labels, mappings, locations, functions) by
// kind, and each byte inside up to 16 (a packed varint becomes a uint64
// and a pointer). A profile mtrace writes takes up to about 20 times its
// size; ReadPprof refuses one that would take more than decodedLimit times
// its limit.
var decodedRecord = map[uint64]int64{2: 512, 3: 256, 4: 192, 5: 128}

const (
	decodedByte  = 16
	decodedLimit = 32
)

// decodedSize estimates the memory profile.ParseUncompressed takes for
// the protocol buffer data, reading only the framing of its top-level
// fields. It stops at malformed framing, which the parser then refuses.
func decodedSize(data []byte) int64 {
	size := decodedByte * int64(len(data))
	for len(data) > 0 {
		key, n := binary.Uvarint(data)
		if n <= 0 {
			return size
		}
		data = data[n:]
		skip := 0
		switch key & 7 {
		case 0: // varint
			if _, n = binary.Uvarint(data); n <= 0 {
				return size
			}
			skip = n
		case 1: // fixed64
			skip = 8
		case 5: // fixed32
			skip = 4
		case 2: // length-delimited
			l, n := binary.Uvarint(data)
			if n <= 0 || l > uint64(len(data)-n) {
				return size
			}
			skip = n + int(l)
			size += decodedRecord[key>>3]
		default:
			return size
		}
		if skip > len(data) {
			return size
		}
		data = data[skip:]
	}
	return size
}

// inflate returns data gunzipped if it is gzipped, refusing more than limit
// bytes either way.
func inflate(data []byte, limit int64) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		if int64(len(data)) > limit {
			return nil, fmt.Errorf("larger than %d bytes (max_output_bytes)", limit)
		}
		return data, nil
	}
	n, err := gunzip(data, io.Discard, limit)
	if err != nil {
		return nil, err
	}
	// Hidden from io.Copy, the buffer's ReadFrom would grow it past n.
	out := struct{ io.Writer }{bytes.NewBuffer(make([]byte, 0, n))}
	if _, err := gunzip(data, out, n); err != nil {
		return nil, err
	}
	return out.Writer.(*bytes.Buffer).Bytes(), nil
}

// gunzip inflates data into w, and returns its inflated size, at most limit.
func gunzip(data []byte, w io.Writer, limit int64) (int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	n, err := io.Copy(w, io.LimitReader(zr, limit+1))
	if err != nil {
		return n, fmt.Errorf("gunzip: %w", err)
	}
	if n > limit {
		return n, fmt.Errorf("inflates to more than %d bytes (max_output_bytes)", limit)
	}
	return n, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
