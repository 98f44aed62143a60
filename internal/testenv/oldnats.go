package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
)

// StartFakeNATS serves just enough of the NATS client protocol (INFO,
// then PONG to every PING) for a client to connect, announcing version as
// the server's version: how a test meets a nats-server older than the
// in-process one. It returns the nats:// URL; the listener and connections
// close at test cleanup.
func StartFakeNATS(t testing.TB, version string) string {
	t.Helper()
	ln := Listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	info := fmt.Sprintf(`INFO {"server_id":"FAKE","server_name":"fake","version":%q,"proto":1,"go":"go1.21","host":"127.0.0.1","port":%d,"headers":true,"max_payload":1048576}`+"\r\n", version, port)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := c.Write([]byte(info)); err != nil {
					return
				}
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(strings.ToUpper(line), "PING") {
						if _, err := c.Write([]byte("PONG\r\n")); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}
