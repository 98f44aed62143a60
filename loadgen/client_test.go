package loadgen

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	for _, c := range []struct {
		name, in  string
		status    int
		text      string
		close     bool
		wantErr   bool
		remaining string // what the next answer on the connection starts with
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOKHTTP/1.1", 200, "", false, false, "HTTP/1.1"},
		{"503", "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\ncontent-length: 9\r\n\r\ntry againNEXT", 503, "try again", false, false, "NEXT"},
		{"chunked", "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nOrde\r\n2\r\nr!\r\n0\r\n\r\nNEXT", 400, "Order!", false, false, "NEXT"},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nOK", 200, "", true, false, ""},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK", 200, "", true, false, ""},
		{"until eof", "HTTP/1.1 404 Not Found\r\n\r\nnot found", 404, "not found", true, false, ""},
		{"garbage", "SSH-2.0-OpenSSH\r\n", 0, "", true, true, ""},
		{"cut headers", "HTTP/1.1 200 OK\r\nContent-Len", 200, "", true, true, ""},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 200, "", true, true, ""},
	} {
		cn := &conn{br: bufio.NewReader(strings.NewReader(c.in))}
		status, text, closeAfter, err := cn.readResponse()
		if status != c.status || text != c.text || closeAfter != c.close || (err != nil) != c.wantErr {
			t.Errorf("%s: readResponse() = %d, %q, close %v, err %v; want %d, %q, close %v, error %v",
				c.name, status, text, closeAfter, err, c.status, c.text, c.close, c.wantErr)
		}
		if rest, _ := cn.br.Peek(cn.br.Buffered()); c.remaining != "" && !strings.HasPrefix(string(rest), c.remaining) {
			t.Errorf("%s: left %q on the connection, want %q next", c.name, rest, c.remaining)
		}
	}
}
