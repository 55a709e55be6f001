package sink

import "testing"

func TestDiffShowsWhatGrew(t *testing.T) {
	base := sampleReport()
	grown := sampleReport()
	grown.Processes[0].Pid = 99 // another run, another pid
	small := &grown.Processes[0].Stacks[1]
	small.Allocs, small.AllocBytes, small.LiveObjects, small.LiveBytes = 150, 2400, 5, 80
	d := Diff(grown, base)
	if len(d.Processes) != 1 || len(d.Processes[0].Stacks) != 1 {
		t.Fatalf("diff %+v: want one process with the one stack that grew", d.Processes)
	}
	s := d.Processes[0].Stacks[0]
	if s.Frames[1].Function != "small" || s.Allocs != 50 || s.AllocBytes != 800 || s.LiveObjects != 4 || s.LiveBytes != 64 {
		t.Errorf("grown stack %+v", s)
	}
	if d.Processes[0].Totals.Allocs != 50 {
		t.Errorf("totals %+v", d.Processes[0].Totals)
	}
	if same := Diff(base, base); len(same.Processes) != 0 {
		t.Errorf("a report diffed with itself shows %+v", same.Processes)
	}
}
