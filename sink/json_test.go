package sink

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestWriteJSONStreams writes a report one process at a time: the text is
// exactly what encoding/json makes of the whole report, and a report with
// no process reads back with an empty list.
func TestWriteJSONStreams(t *testing.T) {
	r := &Report{Schema: Schema, DurationSeconds: 1.5, TrimmedStacks: 2, Processes: []Process{
		{Pid: 1, Exe: "/bin/a", Stacks: []Stack{{Frames: []Frame{{Function: "f", Module: "/bin/a"}}, Counts: Counts{Allocs: 1, AllocBytes: 8}}}},
		{Pid: 2, Exe: "/bin/b", SizeHistogram: []Bucket{{Below: 16, Count: 3}}},
	}}
	var got bytes.Buffer
	if err := WriteJSON(&got, r); err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want)+"\n" {
		t.Errorf("streamed JSON:\n%s\nwant:\n%s", got.String(), want)
	}
	got.Reset()
	if err := WriteJSON(&got, &Report{Schema: Schema}); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(got.Bytes(), &back); err != nil || back.Processes == nil || len(back.Processes) != 0 {
		t.Errorf("a report without processes: %v, %+v\n%s", err, back, got.String())
	}
}
