package knsock

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestValidatorRejection(t *testing.T) {
	checkHandles(t)
	var postPath atomic.Value
	srv, dir := startServer(t, ServerConfig{
		PreValidator: func(fi FileInfo) error {
			if fi.Path != "" {
				return fmt.Errorf("pre-validator saw a path %q", fi.Path)
			}
			if strings.HasSuffix(fi.Name, ".exe") {
				return fmt.Errorf("no executables, please (%s)", fi.Name)
			}
			return nil
		},
		PostValidator: func(fi FileInfo) error {
			data, err := os.ReadFile(fi.Path)
			if err != nil {
				return err
			}
			postPath.Store(fi.Path)
			if len(data) > 0 && data[0] == 'X' {
				return errors.New("content starts with X")
			}
			return nil
		},
	})
	srcDir := t.TempDir()
	exe, _ := randomFile(t, srcDir, "evil.exe", 1000)
	err := SendFile(context.Background(), srv.Addr(), exe)
	var kerr *Error
	if !errors.Is(err, ErrRejected) || !errors.As(err, &kerr) ||
		!strings.Contains(kerr.PeerReason, "no executables, please (evil.exe)") ||
		!strings.Contains(err.Error(), "no executables, please") {
		t.Fatalf("SendFile of evil.exe = %v, want ErrRejected with the validator's reason", err)
	}
	assertAbsent(t, filepath.Join(dir, "evil.exe"))

	bad := filepath.Join(srcDir, "bad.txt")
	writeFile(t, bad, []byte("XYZ: refused after the data"))
	err = SendFile(context.Background(), srv.Addr(), bad)
	if !errors.Is(err, ErrRejected) || !errors.As(err, &kerr) || !strings.Contains(kerr.PeerReason, "content starts with X") {
		t.Fatalf("SendFile of bad.txt = %v, want ErrRejected by the post-validator", err)
	}
	assertAbsent(t, filepath.Join(dir, "bad.txt"))

	good, data := randomFile(t, srcDir, "good.bin", 100<<10)
	data[0] = 'a'
	writeFile(t, good, data)
	if err := SendFile(context.Background(), srv.Addr(), good); err != nil {
		t.Fatalf("SendFile of good.bin: %v", err)
	}
	assertFile(t, filepath.Join(dir, "good.bin"), data)
	if p, _ := postPath.Load().(string); p == "" || p == filepath.Join(dir, "good.bin") {
		t.Errorf("post-validator path %q, want a temporary file", p)
	}
	srv.Close()
	if names := listDir(t, dir); len(names) != 1 || names[0] != "good.bin" {
		t.Errorf("server directory holds %q, want only good.bin", names)
	}
}

func TestValidatorPanic(t *testing.T) {
	checkHandles(t)
	var errs atomic.Int32
	srv, dir := startServer(t, ServerConfig{
		PreValidator: func(fi FileInfo) error {
			if fi.Name == "panic.bin" {
				panic("validator exploded")
			}
			return nil
		},
		Handler: func(fi FileInfo) {
			if fi.Name == "ok.bin" {
				panic("handler exploded")
			}
		},
		ErrorHandler: func(err error) {
			if strings.Contains(err.Error(), "handler exploded") {
				errs.Add(1)
			}
		},
	})
	srcDir := t.TempDir()
	p, _ := randomFile(t, srcDir, "panic.bin", 1000)
	err := SendFile(context.Background(), srv.Addr(), p)
	var kerr *Error
	if !errors.Is(err, ErrRejected) || !errors.As(err, &kerr) || !strings.Contains(kerr.PeerReason, "validator exploded") {
		t.Fatalf("SendFile to a panicking validator = %v, want ErrRejected with the panic", err)
	}
	assertAbsent(t, filepath.Join(dir, "panic.bin"))

	// The server survived and takes the next file.
	ok, data := randomFile(t, srcDir, "ok.bin", 200<<10)
	if err := SendFile(context.Background(), srv.Addr(), ok); err != nil {
		t.Fatalf("SendFile after the panic: %v", err)
	}
	assertFile(t, filepath.Join(dir, "ok.bin"), data)
	srv.Close()
	if errs.Load() != 1 {
		t.Errorf("the handler's panic was reported %d times, want once", errs.Load())
	}
}

func TestCloseDuringTransfers(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	src, _ := randomFile(t, t.TempDir(), "big.bin", 16<<20)

	waited := make(chan error, 1)
	go func() { waited <- srv.Wait() }()

	const n = 4
	started := make(chan struct{}, n)
	release := make(chan struct{})
	results := make(chan error, n)
	for i := range n {
		go func() {
			var once atomic.Bool
			results <- SendFile(context.Background(), srv.Addr(), src,
				WithChunkSize(64<<10), WithRemoteName(fmt.Sprintf("copy%d.bin", i)),
				WithProgress(func(sent, total uint64) error {
					if sent >= 64<<10 && once.CompareAndSwap(false, true) {
						started <- struct{}{}
						<-release // hold the transfer mid-file until the server is closed
					}
					return nil
				}))
		}()
	}
	for range n {
		recv(t, started, "the transfers to start")
	}
	closed := make(chan struct{})
	go func() {
		srv.Close()
		srv.Close() // idempotent
		close(closed)
	}()
	recv(t, closed, "Close to return")
	close(release)
	for range n {
		err := recv(t, results, "a send to end")
		var kerr *Error
		if err == nil || !errors.As(err, &kerr) {
			t.Errorf("send during Close returned %v, want an *Error", err)
		}
	}
	if err := recv(t, waited, "Wait to return"); err != nil {
		t.Errorf("Wait: %v", err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("Wait after Close: %v", err)
	}
	assertEmpty(t, dir)
}

func TestStartServerErrors(t *testing.T) {
	checkHandles(t)
	_, err := StartServer(ServerConfig{Dir: filepath.Join(t.TempDir(), "missing"), Addr: "127.0.0.1:0",
		PreValidator: func(FileInfo) error { return nil }})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("StartServer on a missing directory = %v, want ErrNotFound", err)
	}
	_, err = StartServer(ServerConfig{Dir: t.TempDir() + "\x00/etc", Addr: "127.0.0.1:0",
		Handler: func(FileInfo) {}})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("StartServer on a directory with a NUL = %v, want ErrInvalidArgument", err)
	}
	srv, _ := startServer(t, ServerConfig{})
	_, err = StartServer(ServerConfig{Dir: t.TempDir(), Addr: srv.Addr()})
	if err == nil {
		t.Fatal("StartServer on a port in use succeeded")
	}
	if want := fmt.Sprintf("127.0.0.1:%d", srv.Port()); srv.Addr() != want {
		t.Errorf("Addr() = %q, want %q", srv.Addr(), want)
	}
}

// TestInteropCSender: a Go server receives from the C example sender, examples/send_file.c.
func TestInteropCSender(t *testing.T) {
	checkHandles(t)
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "send_file")
	build := exec.Command("cc", "-I", filepath.Join(root, "include"), filepath.Join(root, "examples", "send_file.c"),
		filepath.Join(root, "target", "release", "libknsock.a"), "-lpthread", "-ldl", "-lm", "-o", bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/send_file.c: %v\n%s", err, out)
	}
	stored := make(chan FileInfo, 1)
	srv, dir := startServer(t, ServerConfig{Handler: func(fi FileInfo) { stored <- fi }})
	src, data := randomFile(t, t.TempDir(), "from-c.bin", 2<<20)
	out, err := exec.Command(bin, "127.0.0.1", fmt.Sprint(srv.Port()), src).CombinedOutput()
	if err != nil {
		t.Fatalf("send_file: %v\n%s", err, out)
	}
	assertFile(t, filepath.Join(dir, "from-c.bin"), data)
	if fi := recv(t, stored, "the received handler"); fi.Name != "from-c.bin" || fi.Size != uint64(len(data)) {
		t.Errorf("handler got %+v", fi)
	}
}

// TestInteropCLIServer: the Go sender delivers to the CLI's server, kn-sock run-file-server.
func TestInteropCLIServer(t *testing.T) {
	checkHandles(t)
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(repoRoot(t), "target", "release", "kn-sock"),
		"run-file-server", "--host", "127.0.0.1", "0", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// The first line is "listening on 127.0.0.1:PORT".
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = bufio.NewReader(stdout).WriteTo(discard{})
	}()
	line := strings.TrimSpace(recv(t, lines, "the CLI server's first line"))
	_, portStr, err := net.SplitHostPort(strings.TrimPrefix(line, "listening on "))
	if err != nil {
		t.Fatalf("unexpected first line %q", line)
	}
	var port int
	fmt.Sscan(portStr, &port)
	addr := net.JoinHostPort("127.0.0.1", portStr)
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CLI server never accepted on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	src, data := randomFile(t, t.TempDir(), "from-go.bin", 3<<20)
	if err := SendFile(context.Background(), local(port), src, WithChunkSize(128<<10)); err != nil {
		t.Fatalf("SendFile to the CLI server: %v", err)
	}
	assertFile(t, filepath.Join(dir, "from-go.bin"), data)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestStaticLink: the test binary does not need libknsock.so at run time.
func TestStaticLink(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if strings.Contains(l, "knsock") {
			t.Errorf("the binary depends on %s (imports %q)", l, libs)
		}
	}
	if len(libs) == 0 {
		t.Logf("no dynamic dependencies")
	}
}

// TestExampleBuilds: examples/go builds against this package.
func TestExampleBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o",
		filepath.Join(t.TempDir(), "example"), ".")
	cmd.Dir = filepath.Join(repoRoot(t), "examples", "go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/go: %v\n%s", err, out)
	}
}

// TestAddresses: "host:port" everywhere; a malformed address is an ErrInvalidArgument.
func TestAddresses(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	if host, _, err := net.SplitHostPort(srv.Addr()); err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q", srv.Addr())
	}
	src, data := randomFile(t, t.TempDir(), "a.bin", 1000)
	if err := SendFile(context.Background(), srv.Addr(), src); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, "a.bin"), data)
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:x", "127.0.0.1:-1", "127.0.0.1:65536", "::1:9000"} {
		if err := SendFile(context.Background(), addr, src); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SendFile to %q = %v, want ErrInvalidArgument", addr, err)
		}
		if _, err := StartServer(ServerConfig{Dir: dir, Addr: addr}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("StartServer on %q = %v, want ErrInvalidArgument", addr, err)
		}
	}
}

// TestShutdown: Shutdown closes the server; when ctx ends first (a handler still runs), it
// returns ctx.Err() and the server finishes closing once the handler returns.
func TestShutdown(t *testing.T) {
	checkHandles(t)
	srv, _ := startServer(t, ServerConfig{})
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close after Shutdown = %v", err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("Wait after Shutdown = %v", err)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	srv, dir := startServer(t, ServerConfig{Handler: func(FileInfo) {
		close(entered)
		<-release
	}})
	src, data := randomFile(t, t.TempDir(), "held.bin", 4096)
	sent := make(chan error, 1)
	go func() { sent <- SendFile(context.Background(), srv.Addr(), src) }()
	recv(t, entered, "the handler")
	if err := recv(t, sent, "the send"); err != nil {
		t.Fatalf("SendFile = %v", err) // the sender is told before the handler runs
	}
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	cancel()
	if err := recv(t, shut, "Shutdown"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with a cancelled context = %v, want context.Canceled", err)
	}
	close(release)
	if err := srv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	assertFile(t, filepath.Join(dir, "held.bin"), data)
}

func TestShutdownLetsTheFileUnderWayFinish(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	addr := srv.Addr()
	src, data := randomFile(t, t.TempDir(), "big.bin", 8<<20)
	paused, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sent := make(chan error, 1)
	go func() {
		sent <- SendFile(context.Background(), addr, src, WithProgress(func(s, total uint64) error {
			if s > 0 && s < total {
				once.Do(func() { close(paused); <-release })
			}
			return nil
		}))
	}()
	recv(t, paused, "the transfer under way")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	// The drain has begun once no new connection is accepted.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during Shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if err := recv(t, sent, "the send"); err != nil {
		t.Fatalf("SendFile = %v (the file under way must finish)", err)
	}
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	assertFile(t, filepath.Join(dir, "big.bin"), data)
}
