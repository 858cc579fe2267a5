package knsock

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	checkHandles(t)
	stored := make(chan FileInfo, 4)
	srv, dir := startServer(t, ServerConfig{Handler: func(fi FileInfo) { stored <- fi }})
	src, data := randomFile(t, t.TempDir(), "data.bin", 3<<20)

	var calls, first, last atomic.Uint64
	first.Store(1)
	err := SendFile(context.Background(), srv.Addr(), src,
		WithChunkSize(64<<10),
		WithProgress(func(sent, total uint64) error {
			if calls.Add(1) == 1 {
				first.Store(sent)
			}
			if total != uint64(len(data)) {
				return fmt.Errorf("total %d, want %d", total, len(data))
			}
			last.Store(sent)
			return nil
		}))
	if err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	assertFile(t, filepath.Join(dir, "data.bin"), data)
	if first.Load() != 0 || last.Load() != uint64(len(data)) || calls.Load() < 3<<4 {
		t.Errorf("progress: %d calls, first sent=%d, last sent=%d", calls.Load(), first.Load(), last.Load())
	}
	fi := recv(t, stored, "the received handler")
	if fi.Name != "data.bin" || fi.Size != uint64(len(data)) || fi.Path != filepath.Join(dir, "data.bin") ||
		!strings.HasPrefix(fi.Peer, "127.0.0.1:") {
		t.Errorf("handler got %+v", fi)
	}

	// A remote name with a subdirectory, compressed, with every other option set.
	small := []byte(strings.Repeat("knsock compresses this line well\n", 1000))
	src2 := filepath.Join(t.TempDir(), "log.txt")
	writeFile(t, src2, small)
	err = SendFile(context.Background(), srv.Addr(), src2,
		WithRemoteName("sub/renamed.txt"), WithCompress(true), WithTimeout(5*time.Second),
		WithConnectTimeout(5*time.Second), WithRetries(1), WithRetryDelay(10*time.Millisecond),
		WithSkipUnchanged(true), WithLegacy(false), WithShowProgress(false))
	if err != nil {
		t.Fatalf("SendFile with options: %v", err)
	}
	assertFile(t, filepath.Join(dir, "sub", "renamed.txt"), small)
	if fi := recv(t, stored, "the received handler"); fi.Name != "sub/renamed.txt" {
		t.Errorf("handler got name %q", fi.Name)
	}
}

func TestConcurrentSends(t *testing.T) {
	checkHandles(t)
	var stored atomic.Int32
	srv, dir := startServer(t, ServerConfig{Handler: func(FileInfo) { stored.Add(1) }})
	srcDir := t.TempDir()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	datas := make([][]byte, n)
	for i := range n {
		var src string
		src, datas[i] = randomFile(t, srcDir, fmt.Sprintf("f%02d.bin", i), 256<<10+i*1000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = SendFile(context.Background(), srv.Addr(), src, WithChunkSize(16<<10))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("send %d: %v", i, errs[i])
			continue
		}
		assertFile(t, filepath.Join(dir, fmt.Sprintf("f%02d.bin", i)), datas[i])
	}
	srv.Close() // no callback runs after Close: the count is final
	if got := stored.Load(); got != n {
		t.Errorf("received handler called %d times, want %d", got, n)
	}
}

// cancelServer starts a server whose error handler reports on the returned channel, so a test
// can wait until the server saw a cancelled upload fail.
func cancelServer(t *testing.T) (*Server, string, <-chan error) {
	serverErr := make(chan error, 16)
	srv, dir := startServer(t, ServerConfig{ErrorHandler: func(err error) {
		select {
		case serverErr <- err:
		default:
		}
	}})
	return srv, dir, serverErr
}

func TestCancelMidTransfer(t *testing.T) {
	checkHandles(t)
	srv, dir, serverErr := cancelServer(t)
	src, _ := randomFile(t, t.TempDir(), "big.bin", 16<<20)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled, sawServerErr atomic.Bool
	var maxSent atomic.Uint64
	err := SendFile(ctx, srv.Addr(), src, WithChunkSize(64<<10),
		WithProgress(func(sent, total uint64) error {
			maxSent.Store(sent)
			if sent >= 1<<20 && cancelled.CompareAndSwap(false, true) {
				cancel()
				// Stay here until the cancellation reached the server, so the transfer cannot
				// finish first.
				select {
				case <-serverErr:
					sawServerErr.Store(true)
				case <-time.After(20 * time.Second):
				}
			}
			return nil
		}))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("SendFile = %v, want context.Canceled and ErrCancelled", err)
	}
	if !sawServerErr.Load() {
		t.Errorf("the server reported no error for the cancelled upload")
	}
	if maxSent.Load() >= 16<<20 {
		t.Errorf("all %d bytes were sent before the cancellation", maxSent.Load())
	}
	assertAbsent(t, filepath.Join(dir, "big.bin"))
	srv.Close() // waits for the workers: a temporary file would be gone by now
	assertEmpty(t, dir)
}

func TestContextDeadline(t *testing.T) {
	checkHandles(t)
	srv, dir, serverErr := cancelServer(t)
	src, _ := randomFile(t, t.TempDir(), "big.bin", 16<<20)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var stalled atomic.Bool
	err := SendFile(ctx, srv.Addr(), src, WithChunkSize(64<<10),
		WithProgress(func(sent, total uint64) error {
			if sent >= 1<<20 && stalled.CompareAndSwap(false, true) {
				// Stall until the deadline has cancelled the transfer and the server saw it.
				select {
				case <-serverErr:
				case <-time.After(20 * time.Second):
				}
			}
			return nil
		}))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("SendFile = %v, want context.DeadlineExceeded", err)
	}
	assertAbsent(t, filepath.Join(dir, "big.bin"))
	srv.Close()
	assertEmpty(t, dir)

	// An already finished context sends nothing.
	err = SendFile(ctx, srv.Addr(), src)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendFile with an expired context = %v", err)
	}
}

func TestProgressCallbackAborts(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	src, _ := randomFile(t, t.TempDir(), "data.bin", 4<<20)

	// A panic: recovered, the transfer aborted, the panic value in the error.
	err := SendFile(context.Background(), srv.Addr(), src, WithChunkSize(64<<10),
		WithProgress(func(sent, total uint64) error {
			if sent >= 256<<10 {
				panic("boom-4711")
			}
			return nil
		}))
	if !errors.Is(err, ErrAbortedByCallback) || !strings.Contains(err.Error(), "boom-4711") {
		t.Fatalf("SendFile with a panicking callback = %v", err)
	}
	assertAbsent(t, filepath.Join(dir, "data.bin"))

	// An error: wrapped.
	stop := errors.New("enough")
	err = SendFile(context.Background(), srv.Addr(), src, WithChunkSize(64<<10),
		WithProgress(func(sent, total uint64) error {
			if sent > 0 {
				return stop
			}
			return nil
		}))
	var kerr *Error
	if !errors.Is(err, ErrAbortedByCallback) || !errors.Is(err, stop) || !errors.As(err, &kerr) ||
		kerr.Code != CodeAbortedByCallback {
		t.Fatalf("SendFile with an aborting callback = %v", err)
	}
	assertAbsent(t, filepath.Join(dir, "data.bin"))
	srv.Close()
	assertEmpty(t, dir)
}

func TestConnectError(t *testing.T) {
	checkHandles(t)
	port := closedPort(t)
	src, _ := randomFile(t, t.TempDir(), "data.bin", 1000)

	err := SendFile(context.Background(), local(port), src, WithConnectTimeout(5*time.Second))
	if !errors.Is(err, ErrConnect) || errors.Is(err, ErrTimeout) {
		t.Fatalf("SendFile to a closed port = %v, want ErrConnect", err)
	}
	err = SendFile(context.Background(), local(port), filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("SendFile of a missing file = %v, want ErrNotFound", err)
	}
	err = SendFile(context.Background(), local(port), src, WithChunkSize(0))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SendFile with chunk size 0 = %v, want ErrInvalidArgument", err)
	}
	err = SendFile(context.Background(), "127.0.0.1:70000", src)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SendFile to port 70000 = %v, want ErrInvalidArgument", err)
	}
	// C would see these cut at the NUL (src itself, an existing file): refused instead.
	err = SendFile(context.Background(), local(port), src+"\x00.bak")
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("SendFile of a path with a NUL = %v, want ErrInvalidArgument", err)
	}
	err = SendFile(context.Background(), local(port), src, WithRemoteName("a\x00b"))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SendFile with a remote name with a NUL = %v, want ErrInvalidArgument", err)
	}
}

func TestErrorType(t *testing.T) {
	e := &Error{Code: CodeRejected, Message: "refused", PeerReason: "too big", Err: context.Canceled}
	if !errors.Is(e, ErrRejected) || errors.Is(e, ErrTimeout) || !errors.Is(e, context.Canceled) {
		t.Errorf("errors.Is on %v", e)
	}
	if s := e.Error(); !strings.Contains(s, "refused") || !strings.Contains(s, "too big") {
		t.Errorf("Error() = %q", s)
	}
	if CodeTimeout.String() == Code(999).String() {
		t.Errorf("CodeTimeout has no description: %q", CodeTimeout.String())
	}
	if busy := (&Error{Code: CodeBusy}); !errors.Is(busy, ErrBusy) || errors.Is(busy, ErrConnect) ||
		CodeBusy.String() != "the receiver is busy: retry later" {
		t.Errorf("CodeBusy: errors.Is(ErrBusy) %v, String() %q", errors.Is(busy, ErrBusy), CodeBusy.String())
	}
	if Version() == "" {
		t.Errorf("empty version")
	}
	buf := make([]byte, 6)
	writeReason(buf, "abcdé") // 'é' is two bytes and does not fit
	if string(buf[:5]) != "abcd\x00" {
		t.Errorf("writeReason cut %q", buf)
	}
}
