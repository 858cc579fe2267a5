package knsock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// failingReader yields good bytes, then fails.
type failingReader struct {
	left int
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, r.err
	}
	n := min(len(p), r.left)
	for i := range p[:n] {
		p[i] = byte(i)
	}
	r.left -= n
	return n, nil
}

// endless yields bytes for ever.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func TestSendStreamArrivesIdenticalWithProgressOfTotalZero(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	data := bytes.Repeat([]byte("knsock stream "), 300_000)
	var totals []uint64
	err := SendStream(context.Background(), local(srv.Port()), "s.bin", bytes.NewReader(data), SizeUnknown,
		WithProgress(func(sent, total uint64) error { totals = append(totals, total); return nil }))
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, "s.bin"), data)
	if len(totals) == 0 || totals[0] != 0 || totals[len(totals)-1] != 0 {
		t.Fatalf("totals %v", totals)
	}
	if err := SendStream(context.Background(), local(srv.Port()), "sized", bytes.NewReader(data[:1000]), 1000); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, "sized"), data[:1000])
}

func TestSendStreamAReaderFailingMidwayStoresNothing(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{})
	boom := errors.New("pg_dump died")
	err := SendStream(context.Background(), local(srv.Port()), "dump.sql", &failingReader{left: 3 << 20, err: boom}, SizeUnknown)
	if !errors.Is(err, ErrAbortedByCallback) || !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	assertAbsent(t, filepath.Join(dir, "dump.sql"))
	err = SendStream(context.Background(), local(srv.Port()), "short", strings.NewReader("12345"), 10)
	if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "ended after 5 of its 10 bytes") {
		t.Fatalf("got %v", err)
	}
	assertAbsent(t, filepath.Join(dir, "short"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SendStream(ctx, local(srv.Port()), "never", endless{}, SizeUnknown); !errors.Is(err, ErrCancelled) {
		t.Fatalf("got %v", err)
	}
}

func TestSendStreamPastMaxFileSizeIsRefusedAndTheServerGoesOn(t *testing.T) {
	checkHandles(t)
	srv, dir := startServer(t, ServerConfig{MaxFileSize: 1 << 20})
	err := SendStream(context.Background(), local(srv.Port()), "big", endless{}, SizeUnknown)
	var e *Error
	if !errors.Is(err, ErrRejected) || !errors.As(err, &e) || !strings.Contains(e.PeerReason, "exceeds the limit of 1048576 bytes") {
		t.Fatalf("got %v", err)
	}
	assertAbsent(t, filepath.Join(dir, "big"))
	if err := SendStream(context.Background(), local(srv.Port()), "small", strings.NewReader("small"), SizeUnknown); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, "small"), []byte("small"))
}

// memStore keeps objects in memory; a name with "boom" fails its write, "panic" panics.
type memStore struct {
	mu      sync.Mutex
	objects map[string]StoredObject
	data    map[string][]byte
	aborted int
}

type pending struct {
	name string
	obj  StoredObject
	buf  bytes.Buffer
}

func (s *memStore) Begin(name string, obj StoredObject) (any, error) {
	return &pending{name: name, obj: obj}, nil
}

func (s *memStore) Write(u any, p []byte) error {
	up := u.(*pending)
	if strings.Contains(up.name, "boom") {
		return errors.New("the vault is sealed")
	}
	if strings.Contains(up.name, "panic") {
		panic("the vault exploded")
	}
	up.buf.Write(p)
	return nil
}

func (s *memStore) Commit(u any) error {
	up := u.(*pending)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[up.name] = up.obj
	s.data[up.name] = up.buf.Bytes()
	return nil
}

func (s *memStore) Abort(any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted++
}

func (s *memStore) Stat(name string) (*StoredObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.objects[name]; ok {
		return &o, nil
	}
	return nil, nil
}

func TestStoreReceivesVerifiedFilesAndAFailingOrPanickingWriteCommitsNothing(t *testing.T) {
	checkHandles(t)
	store := &memStore{objects: map[string]StoredObject{}, data: map[string][]byte{}}
	srv, _ := startServer(t, ServerConfig{Store: store})
	src := t.TempDir()
	var paths []string
	want := map[string][]byte{}
	for i := 0; i < 40; i++ {
		p, data := randomFile(t, src, fmt.Sprintf("f%02d", i), i*2500)
		paths = append(paths, p)
		want[filepath.Base(p)] = data
	}
	res, err := SendFiles(context.Background(), local(srv.Port()), paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for name, data := range want {
		if !bytes.Equal(store.data[name], data) || store.objects[name].Size != uint64(len(data)) || len(store.objects[name].Digest) != 16 {
			t.Fatalf("%s differs", name)
		}
	}
	again, err := SendFiles(context.Background(), local(srv.Port()), paths, WithSkipUnchanged(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if !r.Skipped {
			t.Fatalf("%s not skipped: %v", r.Name, r.Err)
		}
	}
	for i, name := range []string{"boom.bin", "panic.bin"} {
		p, _ := randomFile(t, src, name, 100_000)
		err := SendFile(context.Background(), local(srv.Port()), p)
		var e *Error
		if !errors.Is(err, ErrStore) || !errors.As(err, &e) {
			t.Fatalf("%s: got %v", name, err)
		}
		reason := []string{"the vault is sealed", "the vault exploded"}[i]
		if !strings.Contains(e.PeerReason, reason) {
			t.Fatalf("%s: reason %q", name, e.PeerReason)
		}
		if _, ok := store.data[name]; ok || store.aborted != i+1 {
			t.Fatalf("%s committed, or not aborted (%d)", name, store.aborted)
		}
	}
	err = SendStream(context.Background(), local(srv.Port()), "s.txt", io.LimitReader(strings.NewReader("still serving"), 100), SizeUnknown)
	if err != nil || string(store.data["s.txt"]) != "still serving" {
		t.Fatalf("%v %q", err, store.data["s.txt"])
	}
}
