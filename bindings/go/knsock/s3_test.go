package knsock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// s3Config stores into s3://BUCKET/go-PID-TAG on the S3 engine scripts/test.sh starts. Without
// one the test is skipped, saying which variables to set, unless KNSOCK_REQUIRE_S3=1 (which
// scripts/test.sh sets, so CI never skips it silently): then it fails.
func s3Config(t *testing.T, tag string) ServerConfig {
	t.Helper()
	endpoint, bucket := os.Getenv("KNSOCK_S3_ENDPOINT"), os.Getenv("KNSOCK_S3_BUCKET")
	if endpoint == "" || bucket == "" {
		why := "no S3 engine: set KNSOCK_S3_ENDPOINT and KNSOCK_S3_BUCKET (an existing bucket " +
			"there; keys knsock-test / knsock-test-secret), as scripts/test.sh does when it " +
			"starts SeaweedFS"
		if os.Getenv("KNSOCK_REQUIRE_S3") == "1" {
			t.Fatal(why + " (KNSOCK_REQUIRE_S3=1: S3 tests must run)")
		}
		t.Skip(why + " (KNSOCK_REQUIRE_S3=1 makes this a failure)")
	}
	return ServerConfig{
		S3:          "s3://" + bucket + "/go-" + strconv.Itoa(os.Getpid()) + "-" + tag,
		S3Endpoint:  endpoint,
		S3PathStyle: true,
		S3Region:    "us-east-1",
		S3AccessKey: "knsock-test",
		S3SecretKey: "knsock-test-secret",
	}
}

func TestS3RoundTrip(t *testing.T) {
	checkHandles(t)
	cfg := s3Config(t, "trip")
	var mu sync.Mutex
	var stored []string
	cfg.Handler = func(fi FileInfo) {
		mu.Lock()
		defer mu.Unlock()
		stored = append(stored, fi.Path)
	}
	srv, spool := startServer(t, cfg)
	file, _ := randomFile(t, t.TempDir(), "report.bin", 300000)
	if err := SendFile(context.Background(), srv.Addr(), file); err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	assertAbsent(t, filepath.Join(spool, "report.bin")) // the bucket has it

	// Sent with skip-unchanged and checksums: whether the receiver held the same content.
	skipped := func() bool {
		t.Helper()
		res, err := SendFiles(context.Background(), srv.Addr(), []string{file},
			WithSkipUnchanged(true), WithChecksum(true))
		if err != nil || len(res) != 1 || res[0].Err != nil {
			t.Fatalf("SendFiles = %+v, %v", res, err)
		}
		return res[0].Skipped
	}
	if !skipped() {
		t.Error("the object does not hold the file's digest: the same content was sent again")
	}
	// Other bytes, same size and mtime: only the digest tells them apart.
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	randomFile(t, filepath.Dir(file), "report.bin", 300000)
	if err := os.Chtimes(file, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if skipped() {
		t.Error("changed content of the same size and mtime was skipped")
	}
	if !skipped() {
		t.Error("the changed content is not the object's now")
	}

	if err := srv.Close(); err != nil { // every handler has run
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := cfg.S3 + "/report.bin"
	if len(stored) != 2 || stored[0] != want || stored[1] != want {
		t.Errorf("Handler saw %q, want %q twice", stored, want)
	}
}

func TestS3RefusedKeysAndMisuse(t *testing.T) {
	checkHandles(t)
	cfg := s3Config(t, "refused")
	cfg.Dir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.S3SecretKey = "wrong-secret"
	srv, err := StartServer(cfg)
	var e *Error
	if srv != nil || !errors.Is(err, ErrStore) || !errors.As(err, &e) || e.Code != CodeStore ||
		!strings.Contains(err.Error(), "access denied") {
		t.Fatalf("StartServer with a wrong secret = %v, %v; want ErrStore, access denied", srv, err)
	}

	// An adjuster without S3 is refused, naming what must come first.
	cfg.S3 = ""
	srv, err = StartServer(cfg)
	if srv != nil || !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "knsock_server_config_set_s3") {
		t.Fatalf("StartServer with S3Endpoint but no S3 = %v, %v; want ErrInvalidArgument", srv, err)
	}
}
