package sink

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Metrics is what mtrace exposes to Prometheus, its own health and totals
// per executable (a bounded set of labels), and what its live views show.
type Metrics struct {
	Events, Lost, SampledOut uint64
	Skipped                  int
	// Processes counts the processes being traced now.
	Processes int
	// Executables are the totals per executable path, largest allocators
	// first; past a hundred, the smallest are summed under "other".
	Executables []ExecutableMetrics
	// TopStacks are the stacks of running processes that allocated the most
	// bytes so far, if asked for; they are shown, not exported.
	TopStacks []TopStack
}

// ExecutableMetrics are the totals of the traced processes of one executable.
type ExecutableMetrics struct {
	Exe string
	Counts
}

// TopStack is one of the busiest stacks, with the process that has it.
type TopStack struct {
	Pid int
	Exe string
	Stack
}

var (
	eventsDesc     = prometheus.NewDesc("mtrace_events_total", "Allocation events mtrace received.", nil, nil)
	lostDesc       = prometheus.NewDesc("mtrace_lost_events_total", "Events lost because the ring buffer was full.", nil, nil)
	sampledDesc    = prometheus.NewDesc("mtrace_sampled_out_total", "Allocations left out by sampling above the event-rate limit.", nil, nil)
	skippedDesc    = prometheus.NewDesc("mtrace_skipped_processes", "Process images the policy did not allow tracing.", nil, nil)
	allocsDesc     = prometheus.NewDesc("mtrace_allocations_total", "Allocations made by the traced processes of an executable.", []string{"exe"}, nil)
	allocBytesDesc = prometheus.NewDesc("mtrace_allocated_bytes_total", "Bytes allocated by the traced processes of an executable.", []string{"exe"}, nil)
	freesDesc      = prometheus.NewDesc("mtrace_frees_total", "Frees of traced allocations, by executable.", []string{"exe"}, nil)
	liveDesc       = prometheus.NewDesc("mtrace_live_bytes", "Bytes allocated while traced and not freed, by executable.", []string{"exe"}, nil)
)

// NewRegistry returns a registry that reads metrics from get at each scrape.
func NewRegistry(get func() Metrics) *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector(get))
	return reg
}

type collector func() Metrics

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{eventsDesc, lostDesc, sampledDesc, skippedDesc, allocsDesc, allocBytesDesc, freesDesc, liveDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(eventsDesc, m.Events)
	counter(lostDesc, m.Lost)
	counter(sampledDesc, m.SampledOut)
	ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.GaugeValue, float64(m.Skipped))
	for _, e := range m.Executables {
		// Escaped: the text format leaves controls in label values as they
		// are, and a label that is not UTF-8 would make the metric panic.
		exe := Escape(e.Exe)
		counter(allocsDesc, e.Allocs, exe)
		counter(allocBytesDesc, e.AllocBytes, exe)
		counter(freesDesc, e.Frees, exe)
		ch <- prometheus.MustNewConstMetric(liveDesc, prometheus.GaugeValue, float64(e.LiveBytes), exe)
	}
}

// WriteMetrics writes the registry's metrics in the Prometheus text format,
// which node_exporter's textfile collector reads.
func WriteMetrics(w io.Writer, reg *prometheus.Registry) error {
	families, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	return nil
}
