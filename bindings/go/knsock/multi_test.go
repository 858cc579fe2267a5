package knsock

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSendFilesMulti(t *testing.T) {
	checkHandles(t)
	a, aDir := startServer(t, ServerConfig{})
	b, bDir := startServer(t, ServerConfig{PreValidator: func(fi FileInfo) error {
		if strings.Contains(fi.Name, "secret") {
			return errors.New("secrets stay home")
		}
		return nil
	}})
	src := t.TempDir()
	big, bigData := randomFile(t, src, "big.bin", 2<<20)
	secret, secretData := randomFile(t, src, "secret.txt", 300)
	addrs := []string{a.Addr(), b.Addr(), local(closedPort(t))}

	var mu sync.Mutex
	seen := map[int]int{}
	res, err := SendFilesMulti(context.Background(), addrs, []string{big, secret},
		WithBatchProgress(func(p BatchProgress) error {
			mu.Lock()
			seen[p.Receiver]++
			mu.Unlock()
			return nil
		}))
	if err != nil {
		t.Fatalf("SendFilesMulti: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	if res[0].Err != nil || len(res[0].Files) != 2 {
		t.Fatalf("receiver 0: %+v", res[0])
	}
	assertDelivered(t, res[0].Files)
	assertFile(t, filepath.Join(aDir, "big.bin"), bigData)
	assertFile(t, filepath.Join(aDir, "secret.txt"), secretData)

	if res[1].Err != nil || res[1].Files[0].Err != nil {
		t.Fatalf("receiver 1: %+v", res[1])
	}
	assertFile(t, filepath.Join(bDir, "big.bin"), bigData)
	var refused *Error
	if e := res[1].Files[1].Err; !errors.Is(e, ErrRejected) || !errors.As(e, &refused) ||
		refused.PeerReason != "secrets stay home" {
		t.Errorf("secret.txt at receiver 1: %v", e)
	}
	assertAbsent(t, filepath.Join(bDir, "secret.txt"))

	if !errors.Is(res[2].Err, ErrConnect) || res[2].Files != nil || res[2].Addr != addrs[2] {
		t.Errorf("receiver 2: %+v", res[2])
	}
	if seen[0] == 0 || seen[1] == 0 || seen[2] != 0 {
		t.Errorf("progress calls per receiver: %v", seen)
	}
}

func TestSendFilesMultiBadArguments(t *testing.T) {
	checkHandles(t)
	src := t.TempDir()
	f, _ := randomFile(t, src, "f.bin", 10)
	if _, err := SendFilesMulti(context.Background(), nil, []string{f}); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "no receivers") {
		t.Errorf("no receivers: %v", err)
	}
	if _, err := SendFilesMulti(context.Background(), []string{"nowhere"}, []string{f}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad address: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SendFilesMulti(ctx, []string{"127.0.0.1:1"}, []string{f}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}
