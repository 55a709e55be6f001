package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtrace/mtrace/policy"
)

// checkMetricsAddress refuses a listening address that is not loopback,
// unless the policy allows public metrics.
func checkMetricsAddress(addr string, pol *policy.Policy) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("record: --metrics-listen %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) || pol.Output.PublicMetrics {
		return nil
	}
	return usagef("record: refuse to listen on %s: not a loopback address (a policy may allow it with output.public_metrics)", addr)
}

// maxMetricsConns bounds the connections the metrics listener keeps open,
// far below the descriptors mtrace may open (the Go runtime raises its soft
// RLIMIT_NOFILE to the hard limit), so that a flood of connections never
// takes those the report, the BPF statistics and new probes need.
const maxMetricsConns = 16

// serveMetrics serves the registry on addr until the returned stop is
// called: at most maxMetricsConns connections at a time, each given a few
// seconds to send its request, to take its answer and to stay idle.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	(&connLimit{max: maxMetricsConns}).limit(srv, mux)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("serve metrics", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
