package knsock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const wrongPin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

// tlsServer starts a server with a self-signed identity (kept in a temporary directory outside
// the receiving one) and the settings in cfg.
func tlsServer(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	cfg.TLSSelfSigned = filepath.Join(t.TempDir(), "identity")
	cfg.ResumeTTL = 10 * time.Minute
	srv, dir := startServer(t, cfg)
	if pin := srv.TLSPin(); !strings.HasPrefix(pin, "sha256//") || len(pin) != 52 {
		t.Fatalf("TLSPin() = %q", pin)
	}
	return srv, dir
}

// tokensFile writes a tokens file (mode 0600) accepting alice:alice-secret.
func tokensFile(t *testing.T) string {
	t.Helper()
	hash, err := HashToken("alice-secret")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("alice:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLSOneFileWithThePin(t *testing.T) {
	checkHandles(t)
	got := make(chan FileInfo, 1)
	srv, dir := tlsServer(t, ServerConfig{Handler: func(f FileInfo) { got <- f }})
	path, data := randomFile(t, t.TempDir(), "one.bin", 3<<20)
	if err := SendFile(context.Background(), srv.Addr(), path, WithPin(srv.TLSPin())); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, "one.bin"), data)
	if f := recv(t, got, "the received handler"); f.Identity != "" {
		t.Fatalf("identity %q for an anonymous sender", f.Identity)
	}
	plain, _ := startServer(t, ServerConfig{})
	if pin := plain.TLSPin(); pin != "" {
		t.Fatalf("a plain server has pin %q", pin)
	}
}

func TestTLSTwoThousandFilesResumeAndCompression(t *testing.T) {
	checkHandles(t)
	srv, dir := tlsServer(t, ServerConfig{})
	pin := WithPin(srv.TLSPin())
	src := t.TempDir()
	var paths []string
	for i := 0; i < 2000; i++ {
		p, _ := randomFile(t, src, "f"+strconv.Itoa(i)+".txt", 4096)
		paths = append(paths, p)
	}
	results, err := SendFiles(context.Background(), srv.Addr(), paths, pin)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2000 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Name, r.Err)
		}
	}
	if n := len(listDir(t, dir)); n != 2000 {
		t.Fatalf("%d entries stored", n)
	}

	// Resume: the first attempt is cut at 3/4 (its connection closed mid-content); the second
	// starts where the receiver's kept data ends: what it had read when the connection went, at
	// most the socket buffers (a few MiB) less than was sent, hence the wide margin below.
	const big = 32 << 20
	path, data := randomFile(t, src, "big.bin", big)
	cut := WithProgress(func(sent, total uint64) error {
		if sent >= big/4*3 {
			return errors.New("cut")
		}
		return nil
	})
	if err := SendFile(context.Background(), srv.Addr(), path, pin, cut); !errors.Is(err, ErrAbortedByCallback) {
		t.Fatalf("the cut send gave %v", err)
	}
	first := uint64(0)
	called := false
	again := WithProgress(func(sent, total uint64) error {
		if !called {
			first, called = sent, true
		}
		return nil
	})
	if err := SendFile(context.Background(), srv.Addr(), path, pin, again); err != nil {
		t.Fatal(err)
	}
	if first < big/8 {
		t.Fatalf("the second attempt started at %d, not where the first was cut", first)
	}
	assertFile(t, filepath.Join(dir, "big.bin"), data)

	text := []byte(strings.Repeat("compressible line of text\n", 100000))
	writeFile(t, filepath.Join(src, "text.log"), text)
	if err := SendFile(context.Background(), srv.Addr(), filepath.Join(src, "text.log"), pin, WithCompress(true)); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, "text.log"), text)
}

func TestTLSWrongPinIsAnAuthError(t *testing.T) {
	checkHandles(t)
	srv, dir := tlsServer(t, ServerConfig{})
	path, _ := randomFile(t, t.TempDir(), "x.bin", 100)
	err := SendFile(context.Background(), srv.Addr(), path, WithPin(wrongPin))
	var e *Error
	if !errors.Is(err, ErrAuth) || !errors.As(err, &e) || !strings.Contains(e.Message, "does not match the pin") {
		t.Fatalf("got %v", err)
	}
	assertEmpty(t, dir)
	// A plain sender is told the server requires TLS.
	err = SendFile(context.Background(), srv.Addr(), path)
	if !errors.As(err, &e) || e.Code != CodeAuth || e.PeerCode != 13 || !strings.Contains(e.Message, "requires TLS") {
		t.Fatalf("plain sender: %v", err)
	}
	assertEmpty(t, dir)
}

func TestTLSTokenIdentityReachesTheHandlerAndAWrongOneIsRefused(t *testing.T) {
	checkHandles(t)
	got := make(chan FileInfo, 1)
	srv, dir := tlsServer(t, ServerConfig{TokensFile: tokensFile(t), Handler: func(f FileInfo) { got <- f }})
	path, data := randomFile(t, t.TempDir(), "a.bin", 1000)
	pin := WithPin(srv.TLSPin())

	err := SendFile(context.Background(), srv.Addr(), path, pin, WithToken("alice:guess"))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeAuth || e.PeerCode != 12 || !strings.Contains(e.Message, "wrong token") {
		t.Fatalf("wrong token: %v", err)
	}
	assertEmpty(t, dir)

	if err := SendFile(context.Background(), srv.Addr(), path, pin, WithToken("alice:alice-secret")); err != nil {
		t.Fatal(err)
	}
	f := recv(t, got, "the received handler")
	if f.Identity != "alice" || f.Name != "a.bin" {
		t.Fatalf("handler got identity %q, name %q", f.Identity, f.Name)
	}
	assertFile(t, filepath.Join(dir, "a.bin"), data)
}

func TestTLSSettingsAreCheckedWithTheirReason(t *testing.T) {
	checkHandles(t)
	path, _ := randomFile(t, t.TempDir(), "x.bin", 10)
	addr := local(closedPort(t))
	for _, c := range []struct {
		opts []SendOption
		want string
	}{
		{[]SendOption{WithPin("sha256//short")}, "pin must look like"},
		{[]SendOption{WithPin(wrongPin), WithCAFile("/ca.pem")}, "give a pin or a CA file, not both"},
		{[]SendOption{WithToken("no-colon")}, "NAME:SECRET"},
		{[]SendOption{WithToken("alice:s"), WithTLS(false)}, "only over TLS"},
	} {
		err := SendFile(context.Background(), addr, path, c.opts...)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	_, err := StartServer(ServerConfig{Dir: t.TempDir(), Addr: "127.0.0.1:0", TokensFile: tokensFile(t)})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "need TLS") {
		t.Errorf("tokens without TLS: %v", err)
	}
	_, err = StartServer(ServerConfig{Dir: t.TempDir(), Addr: "127.0.0.1:0", ModeMask: 0o10000})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "mode mask") {
		t.Errorf("mode mask: %v", err)
	}
	if _, err := HashToken(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty secret: %v", err)
	}
}
