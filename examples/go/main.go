// A knsock round trip in one process: start a server in a temporary directory, send it a file,
// check what arrived. Needs an installed knsock that pkg-config finds (see bindings/go/README.md),
// then: go run . [FILE]   (without FILE it sends a small generated file)
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/knsock/knsock/bindings/go/knsock"
)

func main() {
	dir, err := os.MkdirTemp("", "knsock-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	inbox := filepath.Join(dir, "inbox")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		log.Fatal(err)
	}
	srv, err := knsock.StartServer(knsock.ServerConfig{
		Dir:  inbox,
		Addr: "127.0.0.1:0",
		Handler: func(fi knsock.FileInfo) {
			fmt.Printf("server: stored %s (%d bytes) from %s\n", fi.Name, fi.Size, fi.Peer)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	src := filepath.Join(dir, "hello.txt")
	if len(os.Args) > 1 {
		src = os.Args[1]
	} else if err := os.WriteFile(src, []byte("hello from Go\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := knsock.SendFile(ctx, srv.Addr(), src); err != nil {
		log.Fatal(err)
	}
	sent, err := os.ReadFile(src)
	if err != nil {
		log.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(inbox, filepath.Base(src)))
	if err != nil {
		log.Fatal(err)
	}
	if !bytes.Equal(sent, got) {
		log.Fatalf("the received copy of %s differs", src)
	}
	fmt.Printf("sent %s (%d bytes) with knsock %s to %s: the received copy is identical\n",
		filepath.Base(src), len(got), knsock.Version(), srv.Addr())
}
