package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// dropCapsKey is the app metadata that says whether to drop capabilities.
const dropCapsKey = "drop-capabilities"

// keptCapabilities are all mtrace still needs once its probes are attached
// and its sockets bound: CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN to attach
// probes to the libraries and processes it finds later (uprobe_multi links,
// /proc/PID/map_files), and CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to read
// the mappings, executables and files of other users' processes.
var keptCapabilities = []cap.Value{cap.BPF, cap.PERFMON, cap.SYS_ADMIN, cap.SYS_PTRACE, cap.DAC_READ_SEARCH}

// dropCapabilities drops, in every thread, every capability mtrace holds
// but keptCapabilities, from the effective, permitted and inheritable sets
// and from the bounding set, so that nothing it runs later can regain them.
// It does nothing in a run inside a test process.
func dropCapabilities(c *cli.Context, log *slog.Logger) error {
	if drop, _ := c.App.Metadata[dropCapsKey].(bool); !drop {
		return nil
	}
	have := cap.GetProc()
	keep := cap.NewSet()
	var names []string
	for _, v := range keptCapabilities {
		if on, err := have.GetFlag(cap.Permitted, v); err == nil && on {
			if err := keep.SetFlag(cap.Permitted, true, v); err != nil {
				return fmt.Errorf("drop capabilities: %w", err)
			}
			if err := keep.SetFlag(cap.Effective, true, v); err != nil {
				return fmt.Errorf("drop capabilities: %w", err)
			}
			names = append(names, v.String())
		}
	}
	if on, _ := have.GetFlag(cap.Effective, cap.SETPCAP); on {
		var drop []cap.Value
		for v := cap.Value(0); v < cap.MaxBits(); v++ {
			if kept, _ := keep.GetFlag(cap.Permitted, v); !kept {
				drop = append(drop, v)
			}
		}
		if err := cap.DropBound(drop...); err != nil {
			return fmt.Errorf("drop capabilities from the bounding set: %w", err)
		}
	}
	if err := keep.SetProc(); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	log.Debug("capabilities dropped", "kept", strings.Join(names, ","))
	return nil
}
