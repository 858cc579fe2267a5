package knsock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tree writes files (relative name → size) beneath root and returns their contents.
func tree(t *testing.T, root string, files map[string]int) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte, len(files))
	for name, size := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		_, out[name] = randomFile(t, filepath.Dir(p), filepath.Base(p), size)
	}
	return out
}

// assertDelivered checks that every result is a delivery (not a skip) of the file at its Path.
func assertDelivered(t *testing.T, res []FileResult) {
	t.Helper()
	for _, r := range res {
		st, err := os.Stat(r.Path)
		if err != nil {
			t.Fatalf("result path %q: %v", r.Path, err)
		}
		if r.Err != nil || r.Skipped || r.Bytes != uint64(st.Size()) {
			t.Errorf("%s: %+v, want delivered with %d bytes", r.Name, r, st.Size())
		}
	}
}

func names(res []FileResult) []string {
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = r.Name
	}
	return out
}

func TestSendFilesRecursive(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	src := t.TempDir()
	data := tree(t, src, map[string]int{
		"tree/a.txt":            1000,      // small: sent eagerly
		"tree/b.bin":            300 << 10, // large: offered, then sent
		"tree/skip.log":         2000,      // not included
		"tree/sub/c.txt":        70 << 10,
		"tree/sub/secret.txt":   500, // excluded
		"tree/sub/deep/d.bin":   0,   // empty
		"tree/sub/deep/e.txt":   64 << 10,
		"tree/sub/deep/f.tmp":   10, // not included
		"single.txt":            123,
		"outside/ignored.txt":   10, // not named
		"tree/sub/x/secret.bin": 10, // excluded ("*" crosses "/")
	})
	res, err := SendFiles(context.Background(), srv.Addr(),
		[]string{filepath.Join(src, "tree"), filepath.Join(src, "single.txt")},
		WithRecursive(true), WithInclude("*.txt"), WithInclude("*.bin"), WithExclude("*/secret*"),
		WithChunkSize(32<<10))
	if err != nil {
		t.Fatalf("SendFiles: %v", err)
	}
	want := []string{"tree/a.txt", "tree/b.bin", "tree/sub/c.txt", "tree/sub/deep/d.bin",
		"tree/sub/deep/e.txt", "single.txt"}
	if !reflect.DeepEqual(names(res), want) {
		t.Fatalf("sent %q, want %q", names(res), want)
	}
	assertDelivered(t, res)
	for _, r := range res {
		if r.Path != filepath.Join(src, filepath.FromSlash(r.Name)) {
			t.Errorf("%s: path %q", r.Name, r.Path)
		}
		assertFile(t, filepath.Join(dir, filepath.FromSlash(r.Name)), data[r.Name])
	}
	srv.Close()
	got := listDir(t, dir)
	wantDir := []string{"single.txt", "tree", "tree/a.txt", "tree/b.bin", "tree/sub", "tree/sub/c.txt",
		"tree/sub/deep", "tree/sub/deep/d.bin", "tree/sub/deep/e.txt"}
	if !reflect.DeepEqual(got, wantDir) {
		t.Errorf("server directory holds %q, want %q", got, wantDir)
	}
}

func TestSendFilesSymlinks(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	src := t.TempDir()
	data := tree(t, src, map[string]int{"d/real.txt": 100, "target.txt": 200})
	if err := os.Symlink(filepath.Join(src, "target.txt"), filepath.Join(src, "d", "link.txt")); err != nil {
		t.Fatal(err)
	}
	res, err := SendFiles(context.Background(), srv.Addr(), []string{filepath.Join(src, "d")},
		WithRecursive(true))
	if err != nil || !reflect.DeepEqual(names(res), []string{"d/real.txt"}) {
		t.Fatalf("SendFiles without following symlinks = %q, %v", names(res), err)
	}
	res, err = SendFiles(context.Background(), srv.Addr(), []string{filepath.Join(src, "d")},
		WithRecursive(true), WithFollowSymlinks(true))
	if err != nil || !reflect.DeepEqual(names(res), []string{"d/link.txt", "d/real.txt"}) {
		t.Fatalf("SendFiles following symlinks = %q, %v", names(res), err)
	}
	assertDelivered(t, res)
	assertFile(t, filepath.Join(dir, "d", "link.txt"), data["target.txt"])
}

func TestSendFilesRejected(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{PreValidator: func(fi FileInfo) error {
		if strings.HasSuffix(fi.Name, ".exe") {
			return fmt.Errorf("no executables in a batch (%s)", fi.Name)
		}
		return nil
	}})
	src := t.TempDir()
	data := tree(t, src, map[string]int{"a.bin": 1000, "evil.exe": 2000, "big.exe": 200 << 10, "c.bin": 200 << 10})
	paths := []string{filepath.Join(src, "a.bin"), filepath.Join(src, "evil.exe"), filepath.Join(src, "c.bin"),
		filepath.Join(src, "big.exe")}
	res, err := SendFiles(context.Background(), srv.Addr(), paths, WithChunkSize(16<<10))
	if err != nil {
		t.Fatalf("SendFiles: %v", err)
	}
	if !reflect.DeepEqual(names(res), []string{"a.bin", "evil.exe", "c.bin", "big.exe"}) {
		t.Fatalf("results for %q", names(res))
	}
	for _, i := range []int{1, 3} { // a small refused file (sent eagerly) and a large one
		var kerr *Error
		if !errors.Is(res[i].Err, ErrRejected) || !errors.As(res[i].Err, &kerr) ||
			!strings.Contains(kerr.PeerReason, "no executables in a batch ("+res[i].Name+")") {
			t.Errorf("%s: Err = %v, want ErrRejected with the validator's reason", res[i].Name, res[i].Err)
		}
		if res[i].Bytes != 0 || res[i].Skipped {
			t.Errorf("%s: %+v", res[i].Name, res[i])
		}
	}
	assertDelivered(t, []FileResult{res[0], res[2]})
	assertFile(t, filepath.Join(dir, "a.bin"), data["a.bin"])
	assertFile(t, filepath.Join(dir, "c.bin"), data["c.bin"])

	// Stopping at the first failure: the files after it are not offered.
	res, err = SendFiles(context.Background(), srv.Addr(),
		[]string{filepath.Join(src, "evil.exe"), filepath.Join(src, "big.exe"), filepath.Join(src, "c.bin")},
		WithStopOnError(true), WithRemoteName("ignored"), WithLegacy(true))
	if err != nil || len(res) != 3 {
		t.Fatalf("SendFiles with stop on error = %+v, %v", res, err)
	}
	if !errors.Is(res[0].Err, ErrRejected) || !errors.Is(res[1].Err, ErrCancelled) ||
		!errors.Is(res[2].Err, ErrCancelled) || errors.Is(res[2].Err, context.Canceled) {
		t.Errorf("with stop on error: %v, %v, %v", res[0].Err, res[1].Err, res[2].Err)
	}
	srv.Close()
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{"a.bin", "c.bin"}) {
		t.Errorf("server directory holds %q", got)
	}
}

func TestSendFilesSkipUnchanged(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	src := t.TempDir()
	data := tree(t, src, map[string]int{"x/a.bin": 500, "x/b.bin": 300 << 10, "x/c/d.bin": 70 << 10})
	send := func(progress func(BatchProgress) error) []FileResult {
		t.Helper()
		res, err := SendFiles(context.Background(), srv.Addr(), []string{filepath.Join(src, "x")},
			WithRecursive(true), WithSkipUnchanged(true), WithBatchProgress(progress))
		if err != nil || len(res) != 3 {
			t.Fatalf("SendFiles = %+v, %v", res, err)
		}
		return res
	}
	assertDelivered(t, send(func(BatchProgress) error { return nil }))
	for name, want := range data {
		assertFile(t, filepath.Join(dir, filepath.FromSlash(name)), want)
	}

	// Second run: the receiver holds every file; each skip still shows as progress.
	var calls []BatchProgress
	res := send(func(p BatchProgress) error { calls = append(calls, p); return nil })
	for _, r := range res {
		if r.Err != nil || !r.Skipped || r.Bytes != uint64(len(data[r.Name])) || r.BytesSent != 0 {
			t.Errorf("second run, %s: %+v, want skipped", r.Name, r)
		}
	}
	// With WithChecksum the digests are compared: still unchanged.
	res, err := SendFiles(context.Background(), srv.Addr(), []string{filepath.Join(src, "x")},
		WithRecursive(true), WithSkipUnchanged(true), WithChecksum(true), WithDelta(false))
	if err != nil || len(res) != 3 {
		t.Fatalf("SendFiles with checksum = %+v, %v", res, err)
	}
	for _, r := range res {
		if r.Err != nil || !r.Skipped {
			t.Errorf("checksum run, %s: %+v, want skipped", r.Name, r)
		}
	}
	if len(calls) != 3 || calls[2].Sent != calls[2].Total || calls[2].Total != uint64(500+300<<10+70<<10) {
		t.Errorf("second run's batch progress: %+v", calls)
	}
}

func TestSendFilesBatchProgress(t *testing.T) {
	checkHandles(t)
	srv, _ := startServer(t, ServerConfig{})
	src := t.TempDir()
	sizes := []int{10, 300 << 10, 0, 64 << 10, 65<<10 + 1, 1 << 20}
	var paths []string
	var total uint64
	for i, n := range sizes {
		p, _ := randomFile(t, src, fmt.Sprintf("f%d.bin", i), n)
		paths = append(paths, p)
		total += uint64(n)
	}
	var mu sync.Mutex
	var calls []BatchProgress
	var perFile atomic.Int64
	res, err := SendFiles(context.Background(), srv.Addr(), paths, WithChunkSize(32<<10),
		WithProgress(func(sent, total uint64) error { perFile.Add(1); return nil }),
		WithBatchProgress(func(p BatchProgress) error {
			mu.Lock()
			calls = append(calls, p)
			mu.Unlock()
			return nil
		}))
	if err != nil {
		t.Fatalf("SendFiles: %v", err)
	}
	assertDelivered(t, res)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) == 0 || int64(len(calls)) != perFile.Load() {
		t.Fatalf("%d batch progress calls, %d per-file calls", len(calls), perFile.Load())
	}
	seen := make([]bool, len(sizes))
	var prev BatchProgress
	for k, p := range calls {
		if p.Count != len(sizes) || p.Total != total || p.Index < 0 || p.Index >= len(sizes) ||
			p.Name != fmt.Sprintf("f%d.bin", p.Index) || p.FileTotal != uint64(sizes[p.Index]) ||
			p.FileSent > p.FileTotal || p.Sent > p.Total {
			t.Fatalf("call %d: %+v", k, p)
		}
		if k > 0 && (p.Sent < prev.Sent || p.Index < prev.Index ||
			(p.Index == prev.Index && p.FileSent < prev.FileSent)) {
			t.Fatalf("not monotonic: call %d %+v after %+v", k, p, prev)
		}
		seen[p.Index] = true
		prev = p
	}
	for i, s := range seen {
		if !s {
			t.Errorf("no progress for file %d", i)
		}
	}
	if last := calls[len(calls)-1]; last.Sent != last.Total || last.Index != len(sizes)-1 {
		t.Errorf("last call %+v, want Sent == Total", last)
	}

	// SendFile reports a list of one.
	var one []BatchProgress
	if err := SendFile(context.Background(), srv.Addr(), paths[1], WithChunkSize(64<<10),
		WithBatchProgress(func(p BatchProgress) error { one = append(one, p); return nil })); err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	if len(one) < 2 || one[0].Index != 0 || one[0].Count != 1 || one[0].Sent != 0 ||
		one[len(one)-1].Sent != 300<<10 || one[len(one)-1].Total != 300<<10 {
		t.Errorf("SendFile's batch progress: %+v", one)
	}
}

func TestSendFilesCallbackAborts(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	src := t.TempDir()
	var paths []string
	for i := range 3 {
		p, _ := randomFile(t, src, fmt.Sprintf("f%d.bin", i), 200<<10)
		paths = append(paths, p)
	}
	stop := errors.New("enough")
	res, err := SendFiles(context.Background(), srv.Addr(), paths,
		WithBatchProgress(func(p BatchProgress) error {
			if p.Index == 1 {
				return stop
			}
			return nil
		}))
	if err != nil || len(res) != 3 {
		t.Fatalf("SendFiles = %+v, %v", res, err)
	}
	for _, r := range res[1:] {
		var kerr *Error
		if !errors.Is(r.Err, ErrAbortedByCallback) || !errors.Is(r.Err, stop) || !errors.As(r.Err, &kerr) ||
			kerr.Code != CodeAbortedByCallback || errors.Is(r.Err, ErrCancelled) {
			t.Errorf("%s: Err = %v, want ErrAbortedByCallback wrapping the callback's error", r.Name, r.Err)
		}
	}

	// A panic is recovered and aborts the same way, in SendFiles and in SendFile.
	res, err = SendFiles(context.Background(), srv.Addr(), paths,
		WithBatchProgress(func(p BatchProgress) error {
			if p.Index == 2 {
				panic("batch-boom-42")
			}
			return nil
		}))
	if err != nil || len(res) != 3 {
		t.Fatalf("SendFiles = %+v, %v", res, err)
	}
	if !errors.Is(res[2].Err, ErrAbortedByCallback) || !strings.Contains(res[2].Err.Error(), "batch-boom-42") {
		t.Errorf("Err after a panic = %v", res[2].Err)
	}
	err = SendFile(context.Background(), srv.Addr(), paths[0], WithRemoteName("panic.bin"),
		WithBatchProgress(func(BatchProgress) error { panic("single-boom") }))
	if !errors.Is(err, ErrAbortedByCallback) || !strings.Contains(err.Error(), "single-boom") {
		t.Errorf("SendFile with a panicking batch callback = %v", err)
	}
	srv.Close()
	for _, name := range []string{"f2.bin", "panic.bin"} {
		assertAbsent(t, filepath.Join(dir, name))
	}
}

// assertCancelled checks a batch ended by ctx at file 1: file 0 was delivered or not (its
// verdict may not have come in), every later file failed with want, and the server holds
// exactly the files reported delivered.
func assertCancelled(t *testing.T, srv *Server, dir string, res []FileResult, n int, want error) {
	t.Helper()
	if len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	var held []string
	if res[0].Err == nil {
		held = append(held, res[0].Name)
	} else if !errors.Is(res[0].Err, want) {
		t.Errorf("%s: Err = %v", res[0].Name, res[0].Err)
	}
	for _, r := range res[1:] {
		var kerr *Error
		if !errors.Is(r.Err, want) || !errors.Is(r.Err, ErrCancelled) || !errors.As(r.Err, &kerr) ||
			kerr.Code != CodeCancelled || r.Bytes != 0 {
			t.Errorf("%s: %+v, want an error matching %v and ErrCancelled", r.Name, r, want)
		}
	}
	srv.Close() // waits for the workers: a temporary file would be gone by now
	if got := listDir(t, dir); !reflect.DeepEqual(got, held) && !(len(got) == 0 && len(held) == 0) {
		t.Errorf("server directory holds %q, want %q", got, held)
	}
}

func TestSendFilesCancel(t *testing.T) {
	checkHandles(t)
	const n = 5
	src := t.TempDir()
	var paths []string
	for i := range n {
		p, _ := randomFile(t, src, fmt.Sprintf("f%d.bin", i), 256<<10+i)
		paths = append(paths, p)
	}

	t.Run("cancel", func(t *testing.T) {
		srv, dir := startServer(t, ServerConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var maxIndex atomic.Int64
		res, err := SendFiles(ctx, srv.Addr(), paths, WithChunkSize(64<<10),
			WithBatchProgress(func(p BatchProgress) error {
				maxIndex.Store(int64(p.Index))
				if p.Index == 1 {
					cancel()
				}
				return nil
			}))
		if err != nil {
			t.Fatalf("SendFiles: %v", err)
		}
		if maxIndex.Load() != 1 {
			t.Errorf("progress reached file %d after the cancellation", maxIndex.Load())
		}
		assertCancelled(t, srv, dir, res, n, context.Canceled)
	})

	t.Run("deadline", func(t *testing.T) {
		srv, dir := startServer(t, ServerConfig{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := SendFiles(ctx, srv.Addr(), paths, WithChunkSize(64<<10),
			WithBatchProgress(func(p BatchProgress) error {
				if p.Index == 1 {
					<-ctx.Done() // stall until the deadline passes
				}
				return nil
			}))
		if err != nil {
			t.Fatalf("SendFiles: %v", err)
		}
		assertCancelled(t, srv, dir, res, n, context.DeadlineExceeded)
	})

	t.Run("cancel with a per-file callback only", func(t *testing.T) {
		srv, dir := startServer(t, ServerConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var calls atomic.Int64
		res, err := SendFiles(ctx, srv.Addr(), paths, WithChunkSize(64<<10),
			WithProgress(func(sent, total uint64) error {
				// 256 KiB files in 64 KiB chunks: five calls each; the sixth starts file 1.
				if calls.Add(1) == 6 {
					cancel()
				}
				return nil
			}))
		if err != nil {
			t.Fatalf("SendFiles: %v", err)
		}
		assertCancelled(t, srv, dir, res, n, context.Canceled)
	})

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := SendFiles(ctx, local(closedPort(t)), paths)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) || res != nil {
			t.Fatalf("SendFiles with a cancelled context = %v, %v", res, err)
		}
	})
}

func TestSendFilesErrors(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	src := t.TempDir()
	tree(t, src, map[string]int{"d/a.txt": 10})
	file := filepath.Join(src, "d", "a.txt")
	ctx := context.Background()
	cases := []struct {
		what  string
		addr  string
		paths []string
		opts  []SendOption
		want  error
	}{
		{"a directory without recursion", srv.Addr(), []string{file, filepath.Join(src, "d")}, nil, ErrInvalidArgument},
		{"a missing path", srv.Addr(), []string{file, filepath.Join(src, "missing")}, nil, ErrNotFound},
		{"a malformed glob", srv.Addr(), []string{file}, []SendOption{WithInclude("[")}, ErrInvalidArgument},
		{"a glob with a NUL", srv.Addr(), []string{file}, []SendOption{WithExclude("a\x00b")}, ErrInvalidArgument},
		{"a path with a NUL", srv.Addr(), []string{file + "\x00x"}, nil, ErrInvalidArgument},
		{"chunk size 0", srv.Addr(), []string{file}, []SendOption{WithChunkSize(0)}, ErrInvalidArgument},
		{"port 70000", "127.0.0.1:70000", []string{file}, nil, ErrInvalidArgument},
		{"no port", "127.0.0.1", []string{file}, nil, ErrInvalidArgument},
		{"a closed port", local(closedPort(t)), []string{file}, []SendOption{WithConnectTimeout(5 * time.Second)}, ErrConnect},
	}
	for _, c := range cases {
		// A cancellable context and callbacks too, so that handles are created and released.
		cctx, cancel := context.WithCancel(ctx)
		opts := append(c.opts, WithBatchProgress(func(BatchProgress) error { return nil }))
		res, err := SendFiles(cctx, c.addr, c.paths, opts...)
		cancel()
		var kerr *Error
		if !errors.Is(err, c.want) || !errors.As(err, &kerr) || res != nil {
			t.Errorf("SendFiles with %s = %v, %v; want %v and no results", c.what, res, err, c.want)
		}
	}
	// An empty list is no error: nothing to send.
	if res, err := SendFiles(ctx, srv.Addr(), nil); err != nil || len(res) != 0 {
		t.Errorf("SendFiles of no path = %v, %v", res, err)
	}
	srv.Close()
	assertEmpty(t, dir)
}
