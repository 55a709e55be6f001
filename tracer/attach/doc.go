// Package attach puts mtrace's probes on the allocators processes map: it
// finds the allocator objects in a process's mappings, plans where in each
// allocation function its probe goes (probesite), packs each probe's attach
// cookie, makes and owns the uprobe, uretprobe, uprobe_multi and session
// links, and keeps the probe ids the events carry. It also attaches the
// empty probes that calibrate what probing costs.
//
// It takes the loaded BPF programs it attaches, never loads mtrace's
// objects or reads their maps, and never reads a target's memory: it opens
// the files it probes through descriptors it holds, plans each probe from
// the bytes of that very file, and attaches through that descriptor.
package attach
