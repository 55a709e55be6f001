package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mtrace/mtrace/internal/recording"
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

// TestMetricsFlood: an unprivileged local user opens hundreds of idle
// connections to the metrics listener and dozens that send a request a byte
// at a time, and holds them. A fresh scrape still gets its metrics, mtrace
// holds no more descriptors than its connection cap allows, the listener
// has closed the flood's connections, the BPF run-time statistics keep
// working, and the report is written at the end.
func TestMetricsFlood(t *testing.T) {
	tracertest.RequireBPF(t)
	spin := tracertest.BuildC(t, "spin.c")
	flood := tracertest.BuildC(t, "connflood.c")
	out := filepath.Join(t.TempDir(), "r.json")
	cmd, stderr := startMtraceProcess(t, "record", "--metrics-listen", "127.0.0.1:0", "--duration", "120s", "--format", "json",
		"--output", out, "--", spin, "1000000000")
	m := regexp.MustCompile(`msg="metrics listening" addr=127.0.0.1:(\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no metrics address logged: %s", stderr.String())
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	scrape := func() error {
		resp, err := client.Get("http://127.0.0.1:" + m[1] + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		if families := parseMetrics(t, resp.Body); families["mtrace_events_total"] == nil {
			return fmt.Errorf("no mtrace_events_total in %d families", len(families))
		}
		return nil
	}
	if err := scrape(); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t, cmd.Process.Pid)

	const idle, slow = 300, 50
	attack := asNobody(t, flood, m[1], strconv.Itoa(idle), strconv.Itoa(slow))
	stdin, err := attack.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var attackOut syncBuffer
	attack.Stdout, attack.Stderr = &attackOut, &attackOut
	if err := attack.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attack.Process.Kill(); attack.Wait() })
	waitFor(t, &attackOut, "ready", nil)
	if err := scrape(); err != nil {
		t.Errorf("scrape under the flood: %v", err)
	}
	most := 0
	for range 10 {
		most = max(most, openFDs(t, cmd.Process.Pid))
		time.Sleep(100 * time.Millisecond)
	}
	// The cap, and a few for what tracing opens meanwhile (a /proc file).
	if most > before+recording.MaxMetricsConns+8 {
		t.Errorf("mtrace held %d descriptors under the flood, %d before it: the connection cap is %d", most, before, recording.MaxMetricsConns)
	}
	stdin.Close()
	if err := attack.Wait(); err != nil {
		t.Fatalf("connflood: %v: %s", err, attackOut.String())
	}
	var closed, total int
	if _, err := fmt.Sscanf(attackOut.String()[strings.Index(attackOut.String(), "closed"):], "closed %d of %d", &closed, &total); err != nil || total != idle+slow {
		t.Fatalf("connflood said %q", attackOut.String())
	}
	if closed < total-recording.MaxMetricsConns {
		t.Errorf("the listener closed %d of the flood's %d connections, want all but at most %d", closed, total, recording.MaxMetricsConns)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mtrace: %v: %s", err, stderr.String())
	}
	if r := readReport(t, out); len(r.Processes) == 0 || r.AllocationEvents == 0 {
		t.Errorf("report without allocations: %+v", r.Processes)
	}
	if strings.Contains(stderr.String(), "no BPF run-time statistics") {
		t.Errorf("the BPF statistics were lost: %s", stderr.String())
	}
	t.Logf("descriptors: %d before the flood, at most %d under %d connections; %d of them closed by mtrace", before, most, total, closed)
}
