package sink

import (
	_ "embed"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed report.html.tmpl
var htmlTemplate string

var reportPage = template.Must(template.New("report").Parse(htmlTemplate))

// WriteHTML writes the report as one self-contained HTML page: no network
// access (its Content-Security-Policy allows none), charts drawn as inline
// SVG, a small inline script for the flame graph and the sortable table.
func WriteHTML(w io.Writer, r *Report) error {
	v := htmlReport{Report: r}
	for _, p := range r.Processes {
		v.Processes = append(v.Processes, htmlProcess{
			Process:    p,
			Timeline:   timelineSVG(p.Timeline),
			Sizes:      barsSVG(p.SizeHistogram, Bytes),
			Lifetimes:  barsSVG(p.LifetimeHistogram, duration),
			FlameBytes: flameSVG(p, func(s Stack) uint64 { return s.AllocBytes }, Bytes),
			FlameCount: flameSVG(p, func(s Stack) uint64 { return s.Allocs }, func(n uint64) string { return fmt.Sprint(n) }),
			Rows:       rows(p.Stacks, false),
			Leaks:      rows(p.Stacks, true),
		})
	}
	if err := reportPage.Execute(w, v); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

type htmlReport struct {
	*Report
	Processes []htmlProcess
}

type htmlProcess struct {
	Process
	Timeline, Sizes, Lifetimes, FlameBytes, FlameCount template.HTML
	Rows, Leaks                                        []htmlRow
}

type htmlRow struct {
	Caller, Callee, Module string
	Counts
}

// rows lists the stacks for the table (or the leak list): the allocation
// function and its direct caller.
func rows(stacks []Stack, leaks bool) []htmlRow {
	var out []htmlRow
	for _, s := range stacks {
		if leaks && s.LeakedObjects == 0 {
			continue
		}
		row := htmlRow{Counts: s.Counts}
		if len(s.Frames) > 0 {
			row.Callee = s.Frames[0].Function
		}
		if len(s.Frames) > 1 {
			row.Caller, row.Module = s.Frames[1].Function, filepath.Base(s.Frames[1].Module)
		}
		out = append(out, row)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if leaks {
			return out[i].LeakedBytes > out[j].LeakedBytes
		}
		return out[i].AllocBytes > out[j].AllocBytes
	})
	return out
}

func duration(ns uint64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.3gs", float64(ns)/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.3gms", float64(ns)/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3gµs", float64(ns)/1e3)
	}
	return fmt.Sprintf("%dns", ns)
}

const chartWidth, chartHeight = 800.0, 180.0

// timelineSVG draws memory in use over time, a point per sample.
func timelineSVG(points []Point) template.HTML {
	if len(points) == 0 {
		return ""
	}
	// Tracing starts with nothing allocated while traced.
	points = append([]Point{{}}, points...)
	maxT, maxB := points[len(points)-1].Seconds, uint64(1)
	for _, p := range points {
		maxB = max(maxB, p.LiveBytes)
	}
	maxT = math.Max(maxT, 1e-9)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="timeline" viewBox="0 0 %g %g" width="%g" height="%g"><polyline fill="none" stroke="#36c" points="`, chartWidth, chartHeight+20, chartWidth, chartHeight+20)
	xy := func(p Point) (float64, float64) {
		return p.Seconds / maxT * (chartWidth - 10), chartHeight - float64(p.LiveBytes)/float64(maxB)*(chartHeight-10)
	}
	for _, p := range points {
		x, y := xy(p)
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
	}
	b.WriteString(`"/>`)
	for _, p := range points {
		x, y := xy(p)
		fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="3" fill="#36c"><title>%.2fs: %s</title></circle>`, x, y, p.Seconds, Bytes(p.LiveBytes))
	}
	fmt.Fprintf(&b, `<text x="0" y="%g">0s</text><text x="%g" y="%g" text-anchor="end">%.1fs, peak %s</text></svg>`,
		chartHeight+16, chartWidth, chartHeight+16, maxT, html.EscapeString(Bytes(maxB)))
	return template.HTML(b.String())
}

// barsSVG draws a power-of-two histogram.
func barsSVG(buckets []Bucket, label func(uint64) string) template.HTML {
	if len(buckets) == 0 {
		return ""
	}
	top := uint64(1)
	for _, bk := range buckets {
		top = max(top, bk.Count)
	}
	width := chartWidth / float64(len(buckets))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="histogram" viewBox="0 0 %g %g" width="%g" height="%g">`, chartWidth, chartHeight+20, chartWidth, chartHeight+20)
	for i, bk := range buckets {
		h := float64(bk.Count) / float64(top) * (chartHeight - 10)
		name := html.EscapeString("< " + label(bk.Below))
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3a7"><title>%s: %d</title></rect><text x="%.1f" y="%g" font-size="10">%s</text>`,
			float64(i)*width+1, chartHeight-h, width-2, h, name, bk.Count, float64(i)*width+2, chartHeight+14, name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// flameNode is a function in the merged stacks, outermost at the root.
type flameNode struct {
	name     string
	value    uint64
	children map[string]*flameNode
	order    []string
}

const flameWidth, flameRow = 1000.0, 18.0

// flameSVG draws an icicle flame graph of the process's stacks by value:
// the executable on top, then callers down to the allocation functions.
// Clicking a frame zooms to it (the page's script).
func flameSVG(p Process, value func(Stack) uint64, label func(uint64) string) template.HTML {
	root := &flameNode{name: filepath.Base(p.Exe), children: map[string]*flameNode{}}
	for _, s := range p.Stacks {
		v := value(s)
		root.value += v
		n := root
		for i := len(s.Frames) - 1; i >= 0; i-- {
			name := s.Frames[i].Function
			c := n.children[name]
			if c == nil {
				c = &flameNode{name: name, children: map[string]*flameNode{}}
				n.children[name] = c
				n.order = append(n.order, name)
			}
			c.value += v
			n = c
		}
	}
	if root.value == 0 {
		return ""
	}
	var b strings.Builder
	depth := 0
	var draw func(n *flameNode, x float64, d int)
	draw = func(n *flameNode, x float64, d int) {
		w := float64(n.value) / float64(root.value) * flameWidth
		if w < 0.5 {
			return
		}
		depth = max(depth, d)
		fmt.Fprintf(&b, `<g class="f" data-x="%.2f" data-w="%.2f" data-d="%d"><title>%s: %s</title><rect x="%.2f" y="%g" width="%.2f" height="%g" fill="hsl(%d,70%%,60%%)"/><text x="%.2f" y="%g">%s</text></g>`,
			x, w, d, html.EscapeString(n.name), html.EscapeString(label(n.value)), x, float64(d)*flameRow, w, flameRow-1,
			20+len(n.name)*7%40, x+3, float64(d)*flameRow+13, html.EscapeString(fit(n.name, w)))
		for _, name := range n.order {
			c := n.children[name]
			draw(c, x, d+1)
			x += float64(c.value) / float64(root.value) * flameWidth
		}
	}
	draw(root, 0, 0)
	return template.HTML(fmt.Sprintf(`<svg class="flame" viewBox="0 0 %g %g" width="%g" height="%g">%s</svg>`,
		flameWidth, float64(depth+1)*flameRow, flameWidth, float64(depth+1)*flameRow, b.String()))
}

// fit shortens a frame name to what fits in width pixels.
func fit(name string, width float64) string {
	n := int(width / 7)
	if n < 3 {
		return ""
	}
	if len(name) <= n {
		return name
	}
	return name[:n-2] + ".."
}
