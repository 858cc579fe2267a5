package knsock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository root, three levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// local is "127.0.0.1:port".
func local(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// checkHandles registers, as the test's last cleanup, a check that every cgo.Handle given to
// C was deleted (exactly once: a second Delete panics).
func checkHandles(t *testing.T) {
	t.Helper()
	before := liveHandles.Load()
	t.Cleanup(func() {
		if n := liveHandles.Load() - before; n != 0 {
			t.Errorf("%d cgo handles still live after the test", n)
		}
	})
}

// randomFile writes size random bytes to dir/name and returns the path and the bytes.
func randomFile(t *testing.T, dir, name string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startServer starts a server on 127.0.0.1 and an ephemeral port, in a new temporary
// directory unless cfg.Dir is set, closed when the test ends.
func startServer(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv, err := StartServer(cfg)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if srv.Port() <= 0 {
		t.Fatalf("server port %d", srv.Port())
	}
	return srv, cfg.Dir
}

// assertFile checks that path holds exactly want.
func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the received file: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d sent", path, len(got), len(want))
	}
}

// assertAbsent checks that path does not exist.
func assertAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s should not exist (stat: %v)", path, err)
	}
}

// listDir lists every entry beneath dir (hidden temporary files included), relative, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// assertEmpty checks that dir holds nothing at all: no file, no partial, no temporary file.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("%s should be empty, holds %q", dir, names)
	}
}

// recv waits for a value on ch, failing the test after a generous deadline.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// closedPort returns a port on 127.0.0.1 that refuses connections for the rest of the test: a
// socket is bound to it but does not listen. Unlike a port closed after use, it cannot be
// picked as the ephemeral source port of a connect to itself (a TCP self-connect), nor by
// another listener.
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	syscall.CloseOnExec(fd)
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	sa4, ok := sa.(*syscall.SockaddrInet4)
	if !ok || sa4.Port == 0 {
		t.Fatalf("getsockname gave %#v", sa)
	}
	return sa4.Port
}
