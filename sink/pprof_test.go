package sink

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func TestPprofRoundTrips(t *testing.T) {
	want := sampleReport()
	want.Processes[0].Stacks[0].Frames[1].Inlined = false // an inlined frame needs a caller after it
	want.Processes[0].Stacks[1].Frames = append(want.Processes[0].Stacks[1].Frames,
		Frame{Function: "inner", Module: "/bin/app", File: "app.c", Line: 3, Inlined: true, Offset: 0x1234},
		Frame{Function: "outer", Module: "/bin/app", File: "app.c", Line: 9, Offset: 0x1234})
	want.Processes[0].Cgroup = "/system.slice/app.service"
	want.Processes[0].Allocators = []string{want.Processes[0].Allocator}
	var b bytes.Buffer
	if err := WritePprof(&b, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPprof(b.Bytes(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the report:\n got %+v\nwant %+v", got, want)
	}
}

// TestPprofInflatedLimit: a profile is written only if its inflated size
// fits the output limit, and read only if it inflates to no more than the
// reader's limit.
func TestPprofInflatedLimit(t *testing.T) {
	var zipped, raw bytes.Buffer
	if err := WritePprof(&zipped, sampleReport()); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(&raw, zr); err != nil {
		t.Fatal(err)
	}
	if raw.Len() <= zipped.Len() {
		t.Fatalf("the sample profile inflates from %d to %d bytes: want it to grow", zipped.Len(), raw.Len())
	}
	write := func(w io.Writer) error { return WritePprof(w, sampleReport()) }
	if err := Limited(int64(raw.Len()-1), write)(io.Discard); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a profile of %d bytes, %d inflated, under a limit of %d: %v, want ErrTooLarge", zipped.Len(), raw.Len(), raw.Len()-1, err)
	}
	if err := Limited(int64(raw.Len()), write)(io.Discard); err != nil {
		t.Errorf("a profile of %d bytes inflated, under a limit of as much: %v", raw.Len(), err)
	}
	if _, err := ReadPprof(zipped.Bytes(), int64(raw.Len()-1)); err == nil || !strings.Contains(err.Error(), "inflates to more than") {
		t.Errorf("read under a limit of one byte less than it inflates to: %v", err)
	}
	if _, err := ReadPprof(zipped.Bytes(), int64(raw.Len())); err != nil {
		t.Errorf("read under a limit of what it inflates to: %v", err)
	}
}

// TestPprofDecodedLimit: profiles whose decoded form would take far more
// than their size are refused before it is made: a million empty samples
// (2 bytes each), and a thousand samples each naming a thousand-line
// location a hundred times (10^8 frames from 200 KB).
func TestPprofDecodedLimit(t *testing.T) {
	const limit = 4 << 20
	empty := bytes.Repeat([]byte{0x12, 0x00}, 1<<20)
	if _, err := ReadPprof(empty, limit); err == nil || !strings.Contains(err.Error(), "bytes decoded") {
		t.Errorf("a million empty samples: %v", err)
	}
	fn := &profile.Function{ID: 1, Name: "f"}
	loc := &profile.Location{ID: 1, Mapping: &profile.Mapping{ID: 1, File: "/bin/x"}}
	for i := range 1000 {
		loc.Line = append(loc.Line, profile.Line{Function: fn, Line: int64(i)})
	}
	p := &profile.Profile{SampleType: sampleTypes, Mapping: []*profile.Mapping{loc.Mapping}, Location: []*profile.Location{loc}, Function: []*profile.Function{fn}}
	for range 1000 {
		s := &profile.Sample{Value: []int64{1, 1, 0, 0}, NumLabel: map[string][]int64{"pid": {1}}}
		for range 100 {
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPprof(b.Bytes(), limit); err == nil || !strings.Contains(err.Error(), "frames") {
		t.Errorf("%d bytes of profile making 10^8 frames: %v", b.Len(), err)
	}
}

// FuzzReadPprof feeds arbitrary bytes to the reader of saved profiles, as
// mtrace report does: an error or a report, never a panic; nothing inflates
// past the limit (a seed inflates to twice it).
// fuzzLimit is the inflated size FuzzReadPprof allows.
const fuzzLimit = 1 << 16

func FuzzReadPprof(f *testing.F) {
	var b bytes.Buffer
	if err := WritePprof(&b, sampleReport()); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 2*fuzzLimit))
	zw.Close()
	f.Add(bomb.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadPprof(data, fuzzLimit)
		if (r == nil) == (err == nil) {
			t.Fatalf("report %v and error %v", r, err)
		}
	})
}
