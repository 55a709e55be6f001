package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

func parseMetrics(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return families
}

// metricValue returns the value of family's series for exe.
func metricValue(families map[string]*dto.MetricFamily, family, exe string) (float64, bool) {
	mf := families[family]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.Metric {
		for _, l := range m.Label {
			if l.GetName() == "exe" && l.GetValue() == exe {
				if m.Counter != nil {
					return m.Counter.GetValue(), true
				}
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

// TestMetricsEndpoint scrapes the metrics of a run in progress and parses
// them with Prometheus's own text parser.
func TestMetricsEndpoint(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "spin.c")
	b := startMtrace(t, "record", "--metrics-listen", "127.0.0.1:0", "--duration", "20s", "--format", "json",
		"--output", filepath.Join(t.TempDir(), "r.json"), "--", bin, "1000000000")
	m := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`).FindStringSubmatch(b.stderr.String())
	if m == nil {
		t.Fatalf("no metrics address logged: %s", b.stderr.String())
	}
	var families map[string]*dto.MetricFamily
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		families = parseMetrics(t, resp.Body)
		resp.Body.Close()
		if v, ok := metricValue(families, "mtrace_allocations_total", bin); ok && v > 0 {
			break
		}
	}
	for _, path := range []string{"/debug/vars", "/debug/pprof/", "/"} {
		resp, err := http.Get("http://" + m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404: the endpoint serves metrics only", path, resp.Status)
		}
	}
	b.stop(t)
	if v, ok := metricValue(families, "mtrace_allocations_total", bin); !ok || v <= 0 {
		t.Errorf("no allocations of %s in the metrics: %v", bin, families["mtrace_allocations_total"])
	}
	for _, name := range []string{"mtrace_events_total", "mtrace_lost_events_total", "mtrace_sampled_out_total", "mtrace_live_bytes"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// TestMetricsTextfile writes the textfile collector format at the end of a
// run: it parses, and its totals are the report's.
func TestMetricsTextfile(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	prom := filepath.Join(t.TempDir(), "mtrace.prom")
	r, _ := recordJSON(t, "--metrics-textfile", prom, "--", bin)
	f, err := os.Open(prom)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	families := parseMetrics(t, f)
	got, ok := metricValue(families, "mtrace_allocations_total", bin)
	if !ok || len(r.Processes) != 1 || got != float64(r.Processes[0].Totals.Allocs) {
		t.Errorf("metrics say %v allocations of %s, the report %+v", got, bin, r.Processes)
	}
}

func TestMetricsRefusePublicAddress(t *testing.T) {
	res := runMtrace(t.Context(), nil, "record", "--metrics-listen", "0.0.0.0:9100", "--", "true")
	if res.code != exitUsage || !strings.Contains(res.stderr, "not a loopback address") {
		t.Errorf("exit %d, %s", res.code, res.stderr)
	}
}
