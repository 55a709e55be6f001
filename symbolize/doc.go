// Package symbolize turns return addresses in a process into frames
// (function and module), from a snapshot of the process's memory mappings
// taken when it is first seen and the ELF symbol tables of the mapped files:
// each file's own, known by its identity and version, never another file's
// with the same build-id (a build-id only finds separate debug files). DWARF
// is read only when a frame first needs it, measured by its decompressed
// size before it is inflated, within one budget for all files.
//
// It never touches BPF and never returns raw absolute addresses: a frame
// without a symbol is named by its module and the offset into it.
package symbolize
