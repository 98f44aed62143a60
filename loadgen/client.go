package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection, owned by one load worker. It is
// a minimal client on purpose: a request is one write of a prepared header
// and the body, an answer is one http.ReadResponse. net/http's client costs
// several times more CPU per request, and on a machine shared with the
// receiver that CPU would be taken from the thing being measured.
type conn struct {
	target  *target
	backend int // index of target among the run's URLs
	c       net.Conn
	br      *bufio.Reader
	buf     []byte
	timeout time.Duration
}

// target is the parsed notification URL.
type target struct {
	addr   string // host:port to dial
	tls    *tls.Config
	header string // request line and fixed headers, up to "Content-Length: "
}

func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("--url is not a valid URL")
	}
	t := &target{}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		t.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return nil, fmt.Errorf("--url scheme must be http or https, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("--url has no host")
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	t.header = "POST " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: paycomet-notify-loadgen\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
	return t, nil
}

// errConn marks an error of the connection itself (dial, write, read, a
// malformed answer): PAYCOMET sees no answer and retries.
type errConn struct{ err error }

func (e errConn) Error() string { return e.err.Error() }
func (e errConn) Unwrap() error { return e.err }

func (c *conn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.target.addr)
	if err != nil {
		return errConn{err}
	}
	if c.target.tls != nil {
		tc := tls.Client(nc, c.target.tls)
		hctx, cancel := context.WithTimeout(ctx, c.timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return errConn{err}
		}
		nc = tc
	}
	c.c = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 4096)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// post sends body and returns the status and, for anything but 200, the
// start of the answer's body. An error is always errConn, after which the
// connection is closed and the next post dials again.
func (c *conn) post(ctx context.Context, body string) (int, string, error) {
	if c.c == nil {
		if err := c.dial(ctx); err != nil {
			return 0, "", err
		}
	}
	c.buf = append(c.buf[:0], c.target.header...)
	c.buf = strconv.AppendInt(c.buf, int64(len(body)), 10)
	c.buf = append(c.buf, "\r\n\r\n"...)
	c.buf = append(c.buf, body...)
	deadline := time.Now().Add(c.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.c.SetDeadline(deadline)
	if _, err := c.c.Write(c.buf); err != nil {
		c.close()
		return 0, "", errConn{err}
	}
	status, text, closeAfter, err := c.readResponse()
	if err != nil {
		c.close()
		if status != 0 {
			// The status line arrived: the answer counts, the connection does not.
			return status, text, nil
		}
		return 0, "", errConn{err}
	}
	if closeAfter {
		c.close()
	}
	return status, text, nil
}

var errMalformed = errors.New("malformed HTTP answer")

// readResponse reads one HTTP/1.x answer: its status, the start of its body
// when the status is not 200, and whether the server closes the connection.
// It reads only what a receiver sends (Content-Length or chunked bodies)
// without http.ReadResponse's per-answer allocations.
func (c *conn) readResponse() (status int, text string, closeAfter bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, "", true, err
	}
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return 0, "", true, errMalformed
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, "", true, errMalformed
		}
		status = status*10 + int(d-'0')
	}
	closeAfter = line[7] == '0'
	length, chunked := int64(-1), false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return status, "", true, err
		}
		if len(line) <= 2 { // the blank line
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, "", true, errMalformed
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return status, "", true, errMalformed
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = closeAfter || bytes.EqualFold(value, []byte("close"))
		}
	}
	var body io.Reader
	switch {
	case chunked:
		body = httputil.NewChunkedReader(c.br)
	case length >= 0:
		body = io.LimitReader(c.br, length)
	default:
		body, closeAfter = c.br, true // until the server closes
	}
	if status != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(body, 512))
		text = string(b)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return status, text, true, err
	}
	for chunked { // the trailer section, up to its blank line
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return status, text, true, err
		}
		chunked = len(line) > 2
	}
	return status, text, closeAfter, nil
}
