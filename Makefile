# mtrace — build, test and demo. `make help` lists the targets.

# The BPF compiler and its flags, set once for `go generate` (bpf2go reads them).
BPF2GO_CC ?= clang
BPF2GO_CFLAGS ?= -O2 -g -Wall -Werror
export BPF2GO_CC BPF2GO_CFLAGS

# sudo's secure PATH leaves out Go's usual home, /usr/local/go/bin.
GO ?= $(or $(shell command -v go),/usr/local/go/bin/go)
BIN := bin
# Targets are built the way mtrace expects: optimized, with frame pointers for stack walks.
TARGET_CFLAGS := -O2 -g -fno-omit-frame-pointer -Wall

# How long each fuzz target runs in `make fuzz`.
FUZZTIME ?= 30s
# How long each Go benchmark runs in `make bench`, and the size of its overhead table's runs.
BENCHTIME ?= 1s
ROUNDS ?= 5
OPS ?= 200000

# Pinned linter.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Pinned generator of the CycloneDX SBOM.
CYCLONEDX := github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0

.PHONY: help generate build test bench fuzz demo man lint reproducible sbom clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

generate: ## regenerate the BPF objects and Go bindings in bpf/ (needs clang, llvm, libbpf-dev)
	$(GO) generate ./bpf/...

build: ## build bin/mtrace
	$(GO) build -trimpath -o $(BIN)/mtrace ./cmd/mtrace

test: ## run every test; the BPF tests need root (MTRACE_REQUIRE_BPF=1 makes their skips failures)
	$(GO) test -count=1 ./...

bench: build ## run the Go benchmarks, then the overhead table on testdata/bench.c (needs root)
	$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) -benchmem ./...
	cc $(TARGET_CFLAGS) -o $(BIN)/bench testdata/bench.c
	./$(BIN)/mtrace check --overhead --rounds $(ROUNDS) --ops $(OPS) -- ./$(BIN)/bench

fuzz: ## run each fuzz target for FUZZTIME (ELF/DWARF, unwind tables, /proc files, ring-buffer records, policies, saved reports, output paths)
	$(GO) test -run='^$$' -fuzz='^FuzzOpenModule$$' -fuzztime=$(FUZZTIME) ./symbolize
	$(GO) test -run='^$$' -fuzz='^FuzzReadMaps$$' -fuzztime=$(FUZZTIME) ./symbolize
	$(GO) test -run='^$$' -fuzz='^FuzzReadDWARF$$' -fuzztime=$(FUZZTIME) ./symbolize
	$(GO) test -run='^$$' -fuzz='^FuzzReadPprof$$' -fuzztime=$(FUZZTIME) ./sink
	$(GO) test -run='^$$' -fuzz='^FuzzOpenNoSymlinks$$' -fuzztime=$(FUZZTIME) ./sink
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=$(FUZZTIME) ./tracer
	$(GO) test -run='^$$' -fuzz='^FuzzProcFiles$$' -fuzztime=$(FUZZTIME) ./tracer
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./policy
	$(GO) test -run='^$$' -fuzz='^FuzzParseReport$$' -fuzztime=$(FUZZTIME) ./sink
	$(GO) test -run='^$$' -fuzz='^FuzzBuild$$' -fuzztime=$(FUZZTIME) ./tracer/unwind

demo: build ## trace the bundled demo workload (testdata/allocs.c) and print the report (needs root, gcc)
	cc $(TARGET_CFLAGS) -o $(BIN)/allocs testdata/allocs.c
	./$(BIN)/mtrace record -- ./$(BIN)/allocs

man: build ## write the manual page bin/mtrace.1, made from the command-line definition
	./$(BIN)/mtrace man > $(BIN)/mtrace.1

reproducible: ## build twice and check the two binaries are byte for byte the same
	mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/repro-a ./cmd/mtrace
	cache=$$(mktemp -d) && GOCACHE=$$cache $(GO) build -trimpath -o $(BIN)/repro-b ./cmd/mtrace; status=$$?; rm -rf $$cache; exit $$status
	cmp $(BIN)/repro-a $(BIN)/repro-b
	@sha256sum $(BIN)/repro-a | cut -d' ' -f1
	@rm -f $(BIN)/repro-a $(BIN)/repro-b

sbom: ## write a CycloneDX SBOM of the mtrace binary to bin/mtrace.cdx.json
	mkdir -p $(BIN)
	$(GO) run $(CYCLONEDX) app -json -main cmd/mtrace -output $(BIN)/mtrace.cdx.json .

lint: ## check formatting, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean: ## remove built files
	rm -rf $(BIN)
