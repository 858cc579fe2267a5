package knsock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestServerStats(t *testing.T) {
	checkHandles(t)
	srv, _ := startServer(t, ServerConfig{
		PreValidator: func(fi FileInfo) error {
			if strings.HasSuffix(fi.Name, ".exe") {
				return fmt.Errorf("no executables (%s)", fi.Name)
			}
			return nil
		},
	})
	src := t.TempDir()
	good, data := randomFile(t, src, "good.bin", 70000)
	exe, _ := randomFile(t, src, "evil.exe", 500)
	if err := SendFile(context.Background(), srv.Addr(), good); err != nil {
		t.Fatalf("SendFile good.bin: %v", err)
	}
	if err := SendFile(context.Background(), srv.Addr(), exe); !errors.Is(err, ErrRejected) {
		t.Fatalf("SendFile evil.exe = %v, want ErrRejected", err)
	}
	st := srv.Stats()
	if st.FilesReceived != 1 || st.BytesStored != uint64(len(data)) || st.ConnectionsAccepted != 2 {
		t.Errorf("stats %+v: want 1 file of %d bytes from 2 connections", st, len(data))
	}
	// Code 1, the validator: before the data, or after it for a small file sent eagerly.
	if st.FilesRejected[1]+st.FilesFailed[1] != 1 || st.Rejected()+st.Failed() != 1 {
		t.Errorf("refusals %v / %v, want one with code 1", st.FilesRejected, st.FilesFailed)
	}
	if st.BytesReceived < uint64(len(data)) || st.ConnectionsMax == 0 || st.DescriptorsLimit == 0 {
		t.Errorf("stats %+v", st)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.FilesReceived != 0 {
		t.Errorf("stats of a closed server %+v, want zero", st)
	}
}
