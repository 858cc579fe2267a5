// A Go program outside the knsock tree: it uses the Go module copied alone (run.sh adds the
// replace directive) and an installed knsock found through pkg-config. It serves a temporary
// directory on 127.0.0.1, sends a file there and checks the bytes.
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
	dir, err := os.MkdirTemp("", "knsock-go-consumer-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	inbox := filepath.Join(dir, "inbox")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		log.Fatal(err)
	}
	data := make([]byte, 256<<10+5)
	for i := range data {
		data[i] = byte(i * 131 >> 3)
	}
	src := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		log.Fatal(err)
	}
	srv, err := knsock.StartServer(knsock.ServerConfig{Dir: inbox, Addr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := knsock.SendFile(ctx, srv.Addr(), src); err != nil {
		log.Fatal(err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(inbox, "data.bin"))
	if err != nil || !bytes.Equal(got, data) {
		log.Fatalf("the received copy differs (%v)", err)
	}
	fmt.Printf("consumer (Go): knsock %s sent %d bytes over 127.0.0.1, received copy identical\n",
		knsock.Version(), len(data))
}
