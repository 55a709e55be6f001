package sink

import (
	"bytes"
	"reflect"
	"testing"
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
	got, err := ReadPprof(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the report:\n got %+v\nwant %+v", got, want)
	}
}

// FuzzReadPprof feeds arbitrary bytes to the reader of saved profiles, as
// mtrace report does: an error or a report, never a panic.
func FuzzReadPprof(f *testing.F) {
	var b bytes.Buffer
	if err := WritePprof(&b, sampleReport()); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadPprof(bytes.NewReader(data))
		if (r == nil) == (err == nil) {
			t.Fatalf("report %v and error %v", r, err)
		}
	})
}
