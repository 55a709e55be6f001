package recording

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// connLimit keeps at most max connections of an http.Server open. Past it,
// a new connection closes the oldest one not being answered (idle, or still
// sending its request), or itself when every one is being answered: a flood
// of idle or slow connections holds neither descriptors nor the way in, and
// the newest request, a scraper's, is served.
type connLimit struct {
	max   int
	mu    sync.Mutex
	conns []*limitedConn // oldest first
}

// limitedConn is a connection connLimit counts, and whether a handler is
// answering it.
type limitedConn struct {
	net.Conn
	busy bool
}

// connKey is the context key under which a request finds its connection.
type connKey struct{}

// limit makes srv keep within l, calling h for its requests.
func (l *connLimit) limit(srv *http.Server, h http.Handler) {
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	srv.ConnState = l.track
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(net.Conn)
		l.setBusy(c, true)
		defer l.setBusy(c, false)
		h.ServeHTTP(w, r)
	})
}

// track counts connections as the server opens and closes them; the server
// calls it for a new connection before it reads from it.
func (l *connLimit) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateNew:
		l.conns = append(l.conns, &limitedConn{Conn: c})
		if len(l.conns) <= l.max {
			return
		}
		for i, old := range l.conns {
			if !old.busy {
				old.Close()
				l.conns = append(l.conns[:i], l.conns[i+1:]...)
				return
			}
		}
	case http.StateClosed, http.StateHijacked:
		for i, old := range l.conns {
			if old.Conn == c {
				l.conns = append(l.conns[:i], l.conns[i+1:]...)
				return
			}
		}
	}
}

// setBusy marks c as being answered, or no longer.
func (l *connLimit) setBusy(c net.Conn, busy bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, old := range l.conns {
		if old.Conn == c {
			old.busy = busy
			return
		}
	}
}
