package sink

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func sampleReport() *Report {
	small := Stack{Frames: []Frame{{Function: "malloc", Module: "/lib/libc.so.6"}, {Function: "small", Module: "/bin/app", File: "app.c", Line: 12}},
		Counts: Counts{Allocs: 100, AllocBytes: 1600, Frees: 99, FreeBytes: 1584, LiveObjects: 1, LiveBytes: 16}}
	big := Stack{Frames: []Frame{{Function: "calloc", Module: "/lib/libc.so.6"}, {Function: "big", Module: "/bin/app", Inlined: true}},
		Counts: Counts{Allocs: 1, AllocBytes: 1 << 20, LiveObjects: 1, LiveBytes: 1 << 20}}
	p := Process{Pid: 7, Exe: "/bin/app", Allocator: "/lib/libc.so.6", Stacks: []Stack{big, small}}
	p.Totals.Add(big.Counts)
	p.Totals.Add(small.Counts)
	return &Report{Schema: Schema, DurationSeconds: 1.5, LostEvents: 3, Processes: []Process{p}}
}

func TestWriteTextRanksByBytesAndByCount(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleReport(), 1); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	byBytes := out[strings.Index(out, "by bytes"):strings.Index(out, "by allocation count")]
	byCount := out[strings.Index(out, "by allocation count"):]
	if !strings.Contains(byBytes, "big (app)") || strings.Contains(byBytes, "small (app)") {
		t.Errorf("top stack by bytes is not big:\n%s", byBytes)
	}
	if !strings.Contains(byCount, "small (app)") || strings.Contains(byCount, "big (app)") {
		t.Errorf("top stack by count is not small:\n%s", byCount)
	}
	for _, want := range []string{"lost events: 3", "101 allocs (1.0 MiB)", "live at end: 2 objects"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSONRoundTrips(t *testing.T) {
	want := sampleReport()
	var b bytes.Buffer
	if err := WriteJSON(&b, want); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("round trip changed the report:\n%+v\n%+v", got, want)
	}
	for _, field := range []string{`"schema"`, `"lost_events"`, `"processes"`, `"frames"`, `"function"`, `"module"`, `"live_bytes"`} {
		if !bytes.Contains(b.Bytes(), []byte(field)) {
			t.Errorf("JSON lacks %s", field)
		}
	}
}
