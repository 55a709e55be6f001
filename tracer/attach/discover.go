package attach

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mtrace/mtrace/symbolize"
)

var (
	// ErrNoAllocator means a process has mapped no file defining malloc and free yet.
	ErrNoAllocator = errors.New("no allocator (malloc and free) mapped")
	// errNoLoader means a process has no allocator and no dynamic loader that could map one.
	errNoLoader = errors.New("no allocator (malloc and free) in a static executable")
)

// Found is what Process found in a process.
type Found struct {
	Allocators int  // mapped objects that define malloc and free
	Libc       bool // the C library (or a static executable) is mapped: the loader has mapped what the program links
	Static     bool // no dynamic loader: nothing more will be mapped at startup
}

// Process probes every allocator object pid maps that is not probed yet.
// With no object defining malloc and free, the error (ErrNoAllocator or
// another) says whether a dynamic loader may still map one.
func (a *Attacher) Process(pid int) (Found, error) {
	var d Found
	maps, err := symbolize.ReadMaps(a.cfg.ProcRoot, pid)
	if err != nil {
		return d, err
	}
	dynamic := false
	for _, m := range maps {
		mod, err := a.cfg.Symbolizer.Module(pid, m)
		if err != nil {
			continue
		}
		dynamic = dynamic || mod.Dynamic()
		d.Libc = d.Libc || mod.Defines("__libc_start_main")
		if !isAllocator(mod) {
			continue
		}
		if mod.Defines("malloc") {
			d.Allocators++
		}
		if err := a.probeMapped(pid, m); err != nil {
			return d, err
		}
		a.warnUnprobed(pid, m)
	}
	d.Static = !dynamic
	switch {
	case d.Allocators > 0:
		return d, nil
	case dynamic:
		return d, ErrNoAllocator
	default:
		return d, errNoLoader
	}
}

// probeScope is a file probed for every process (pid 0) or for one.
type probeScope struct {
	file symbolize.FileID
	pid  int
}

// probeMapped attaches the probes to the file behind mapping m of pid, once
// per file, or once per file and pid when only the given pids are traced.
// Its symbols are read again through the descriptor it is attached by,
// unless known from the same version of the file. A file that failed is not
// tried again.
func (a *Attacher) probeMapped(pid int, m symbolize.Mapping) error {
	scope := probeScope{file: m.ID()}
	if a.cfg.OnlyPids {
		scope.pid = pid
	}
	if _, done := a.probed[scope]; done {
		return nil
	}
	f, mod, err := a.cfg.Symbolizer.ModuleFile(pid, m)
	if err != nil {
		return err
	}
	defer f.Close()
	if !isAllocator(mod) {
		return nil // changed since it was first read
	}
	skipped, err := a.attachModule(f, m.ID(), m.Path, mod, scope.pid)
	a.probed[scope] = err == nil
	a.unprobed[scope.file] = skipped
	return err
}

// warnUnprobed warns that traced process pid maps allocation functions
// left unprobed: once per file, or once per file and pid when only the
// given pids are traced (each has its own probes).
func (a *Attacher) warnUnprobed(pid int, m symbolize.Mapping) {
	skipped := a.unprobed[m.ID()]
	for _, why := range slices.Sorted(maps.Keys(skipped)) {
		a.log.Warn("not probing "+why, "pid", pid, "module", m.Path, "functions", strings.Join(skipped[why], " "))
	}
	delete(a.unprobed, m.ID())
}

// installedAllocators are the sonames of allocators a distribution installs.
var installedAllocators = []string{
	"libc.so.6", "libc_malloc_debug.so.0", "libstdc++.so.6", "libjemalloc.so.2",
	"libtcmalloc.so.4", "libtcmalloc_minimal.so.4", "libmimalloc.so.2",
}

// libDirs are where they are installed.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/usr/local/lib"}

// Installed probes the allocators installed on the host, for every
// process, before any process maps them: so that a process started later is
// traced from its first allocation even through an allocator nobody had
// loaded before.
func (a *Attacher) Installed() error {
	for _, dir := range libDirs {
		for _, name := range installedAllocators {
			path, err := filepath.EvalSymlinks(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			f, err := symbolize.OpenFile(path)
			if err != nil {
				continue
			}
			mod, id, err := a.cfg.Symbolizer.Open(f, path)
			if _, done := a.probed[probeScope{file: id}]; err != nil || done || !isAllocator(mod) {
				f.Close()
				continue
			}
			skipped, err := a.attachModule(f, id, path, mod, 0)
			f.Close()
			a.unprobed[id] = skipped
			if err != nil {
				return fmt.Errorf("attach to installed allocator: %w", err)
			}
			a.probed[probeScope{file: id}] = true
		}
	}
	return nil
}
