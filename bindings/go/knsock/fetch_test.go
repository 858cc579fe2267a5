package knsock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestFetchRoundTrip(t *testing.T) {
	checkHandles(t)
	srv, _ := startServer(t, ServerConfig{AllowFetch: true, AllowAnonymousFetch: true})
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, a := randomFile(t, filepath.Join(src, "tree"), "a.bin", 600_000)
	_, b := randomFile(t, filepath.Join(src, "tree", "sub"), "b.txt", 100)
	sent, err := SendFiles(context.Background(), srv.Addr(), []string{filepath.Join(src, "tree")},
		WithRecursive(true))
	if err != nil || len(sent) != 2 {
		t.Fatalf("SendFiles: %v, %d files", err, len(sent))
	}

	dst := t.TempDir()
	var calls atomic.Uint64
	results, err := FetchFiles(context.Background(), srv.Addr(), []string{"tree", "nope"}, dst,
		WithRecursive(true), WithProgress(func(got, total uint64) error {
			calls.Add(1)
			return nil
		}))
	if err != nil {
		t.Fatalf("FetchFiles: %v", err)
	}
	if len(results) != 3 || results[0].Name != "tree/a.bin" || results[0].Err != nil ||
		results[0].Path != filepath.Join(dst, "tree", "a.bin") {
		t.Fatalf("results: %+v", results)
	}
	if results[2].Name != "nope" || !errors.Is(results[2].Err, ErrNotFound) {
		t.Errorf("missing name: %+v", results[2])
	}
	assertFile(t, filepath.Join(dst, "tree", "a.bin"), a)
	assertFile(t, filepath.Join(dst, "tree", "sub", "b.txt"), b)
	if calls.Load() < 2 {
		t.Errorf("%d progress calls", calls.Load())
	}

	results, err = FetchFiles(context.Background(), srv.Addr(), []string{"tree"}, dst,
		WithRecursive(true), WithSkipUnchanged(true))
	if err != nil || len(results) != 2 || !results[0].Skipped || !results[1].Skipped {
		t.Errorf("unchanged re-run: %v %+v", err, results)
	}

	other := t.TempDir()
	if err := FetchFile(context.Background(), srv.Addr(), "tree/sub/b.txt", other); err != nil {
		t.Fatalf("FetchFile: %v", err)
	}
	assertFile(t, filepath.Join(other, "b.txt"), b)
	err = FetchFile(context.Background(), srv.Addr(), "nope", other)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("FetchFile of a missing name: %v", err)
	}
}

func TestFetchCancelledAndRefused(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{AllowFetch: true, AllowAnonymousFetch: true})
	writeFile(t, filepath.Join(dir, "big"), make([]byte, 4<<20))
	ctx, cancel := context.WithCancel(context.Background())
	dst := t.TempDir()
	err := FetchFile(ctx, srv.Addr(), "big", dst, WithProgress(func(got, total uint64) error {
		cancel() // the fetch stops at its next piece
		return nil
	}))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Errorf("cancelled fetch: %v", err)
	}
	assertEmpty(t, dst)

	closed, _ := startServer(t, ServerConfig{})
	err = FetchFile(context.Background(), closed.Addr(), "x", dst)
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "does not serve fetches") {
		t.Errorf("no AllowFetch: %v", err)
	}
	anon, _ := startServer(t, ServerConfig{AllowFetch: true})
	err = FetchFile(context.Background(), anon.Addr(), "x", dst)
	var e *Error
	if !errors.Is(err, ErrAuth) || !errors.As(err, &e) || e.PeerCode != 20 {
		t.Errorf("anonymous fetch: %v", err)
	}
	if err := FetchFile(context.Background(), anon.Addr(), "a\x00b", dst); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NUL in a name: %v", err)
	}
}

func TestFetchModeMaskAndPartial(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{AllowFetch: true, AllowAnonymousFetch: true})
	_, data := randomFile(t, dir, "f.bin", 600_000)
	if err := os.Chmod(filepath.Join(dir, "f.bin"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := FetchFile(context.Background(), srv.Addr(), "f.bin", dst, WithFetchModeMask(0o700)); err != nil {
		t.Fatalf("FetchFile: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dst, "f.bin")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode within 0700: %v %v", st.Mode(), err)
	}
	err := FetchFile(context.Background(), srv.Addr(), "f.bin", dst, WithFetchModeMask(0o10000))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("mask over 07777: %v", err)
	}

	// Cut short by the progress callback: with partial copies kept the data stays hidden and
	// the next fetch resumes it; without, nothing is left.
	abort := errors.New("stop here")
	for _, partial := range []bool{false, true} {
		cut := t.TempDir()
		err := FetchFile(context.Background(), srv.Addr(), "f.bin", cut, WithFetchPartial(partial),
			WithProgress(func(got, total uint64) error { return abort }))
		if !errors.Is(err, ErrAbortedByCallback) {
			t.Errorf("aborted fetch (partial %v): %v", partial, err)
		}
		left, _ := os.ReadDir(cut)
		switch {
		case partial && (len(left) != 1 || !strings.HasPrefix(left[0].Name(), ".knsock-partial-")):
			t.Errorf("partial copy kept: %v", left)
		case !partial && len(left) != 0:
			t.Errorf("nothing left without partial: %v", left)
		}
		if err := FetchFile(context.Background(), srv.Addr(), "f.bin", cut, WithFetchPartial(partial)); err != nil {
			t.Fatalf("second fetch: %v", err)
		}
		assertFile(t, filepath.Join(cut, "f.bin"), data)
		if left, _ := os.ReadDir(cut); len(left) != 1 {
			t.Errorf("after the second fetch: %v", left)
		}
	}
}
