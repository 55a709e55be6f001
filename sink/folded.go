package sink

import (
	"fmt"
	"io"
	"strings"
)

// WriteFolded writes the report as folded stacks, the input of flame graph
// tools: one line per stack, the executable then its frames from the
// outermost to the allocation function, separated by ";", and the bytes
// allocated there. Names are escaped as Escape does, and a ";" in them as
// \x3b, so that no name splits a line or a frame.
func WriteFolded(w io.Writer, r *Report) error {
	for _, proc := range r.Processes {
		for _, s := range proc.Stacks {
			names := []string{escape(proc.Exe, ";")}
			for i := len(s.Frames) - 1; i >= 0; i-- {
				names = append(names, escape(s.Frames[i].Function, ";"))
			}
			if _, err := fmt.Fprintf(w, "%s %d\n", strings.Join(names, ";"), s.AllocBytes); err != nil {
				return fmt.Errorf("write folded stacks: %w", err)
			}
		}
	}
	return nil
}
