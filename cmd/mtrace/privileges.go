package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// dropCapsKey is the app metadata that says whether to drop capabilities.
const dropCapsKey = "drop-capabilities"

// keptCapabilities are all mtrace still needs once its probes are attached
// and its sockets bound: CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN to attach
// probes to the libraries and processes it finds later (uprobe_multi links,
// /proc/PID/map_files), and CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to read
// the mappings, executables and files of other users' processes.
var keptCapabilities = []cap.Value{cap.BPF, cap.PERFMON, cap.SYS_ADMIN, cap.SYS_PTRACE, cap.DAC_READ_SEARCH}

// commandCapability is kept too in a run that started a command: the
// command runs as another user, whom mtrace must still be able to end.
const commandCapability = cap.KILL

// writerCapabilities are kept too in a run that writes into a directory of
// the user who ran sudo: mtrace writes there as that user (setfsuid,
// setfsgid), since root without CAP_DAC_OVERRIDE may not.
var writerCapabilities = []cap.Value{cap.SETUID, cap.SETGID}

// dropCapabilities drops, in every thread, every capability mtrace holds
// but keptCapabilities (and commandCapability in a run with a command,
// writerCapabilities in one that writes as another user: asUser), from the
// effective, permitted and inheritable sets, and sets
// no_new_privs, so that nothing it might exec later could regain them (one
// call for all threads, where trimming the bounding set would take one per
// capability). It does nothing in a run inside a test process.
func dropCapabilities(c *cli.Context, log *slog.Logger, asUser bool) error {
	if drop, _ := c.App.Metadata[dropCapsKey].(bool); !drop {
		return nil
	}
	have := cap.GetProc()
	keep := cap.NewSet()
	var names []string
	kept := keptCapabilities
	if c.Args().Present() {
		kept = append(kept[:len(kept):len(kept)], commandCapability)
	}
	if asUser {
		kept = append(kept[:len(kept):len(kept)], writerCapabilities...)
	}
	for _, v := range kept {
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
	if _, _, errno := psx.Syscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("set no_new_privs: %w", errno)
	}
	if err := keep.SetProc(); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	log.Debug("capabilities dropped", "kept", strings.Join(names, ","))
	return nil
}
