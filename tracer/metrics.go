package tracer

import (
	"sync"
	"time"

	"github.com/mtrace/mtrace/sink"
)

// metrics keeps the latest snapshot for readers on other goroutines.
type metrics struct {
	mu    sync.Mutex
	last  sink.Metrics
	taken time.Time
}

// Metrics returns the latest snapshot of a run's totals; Run refreshes it
// every second. It is safe for concurrent use.
func (t *Tracer) Metrics() sink.Metrics {
	t.metrics.mu.Lock()
	defer t.metrics.mu.Unlock()
	return t.metrics.last
}

// snapshot samples the running images' timelines and publishes the current
// totals, at most once a second.
func (t *Tracer) snapshot() {
	if time.Since(t.metrics.taken) < time.Second {
		return
	}
	t.metrics.taken = time.Now()
	t.agg.Sample()
	m := t.agg.Metrics()
	if t.cfg.TopStacks {
		m.TopStacks = t.agg.TopStacks()
	}
	var r sink.Report
	if t.readCounters(&r) == nil {
		m.Lost, m.SampledOut = r.LostEvents, r.SampledOut
	}
	t.metrics.mu.Lock()
	t.metrics.last = m
	t.metrics.mu.Unlock()
}
