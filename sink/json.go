package sink

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes r as indented JSON, one process at a time, so that a
// report of many processes is never held in memory as a whole document.
// The text is what json.MarshalIndent makes of r, except that no processes
// are [], never null.
func WriteJSON(w io.Writer, r *Report) error {
	// The report without its processes: the outer field hides the embedded
	// one (which would not work if Report had a MarshalJSON of its own).
	head, err := json.MarshalIndent(struct {
		*Report
		Processes *struct{} `json:"processes,omitempty"`
	}{Report: r}, "", "  ")
	if err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	bw := bufio.NewWriter(w)
	bw.Write(head[:len(head)-2]) // all but "\n}"
	bw.WriteString(",\n  \"processes\": [")
	for i := range r.Processes {
		p, err := json.MarshalIndent(&r.Processes[i], "    ", "  ")
		if err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		bw.Write(p)
	}
	if len(r.Processes) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}
