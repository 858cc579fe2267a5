package knsock

/*
#include <stdlib.h>
#include <knsock.h>
#include "trampolines.h"
*/
import "C"

import (
	"context"
	"io/fs"
	"math"
	"net"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// Overwrite is what a server does when a received file's name exists.
type Overwrite uint32

const (
	OverwriteReplace Overwrite = C.KNSOCK_OVERWRITE_REPLACE // replace it atomically (default)
	OverwriteRefuse  Overwrite = C.KNSOCK_OVERWRITE_REFUSE  // refuse the new file (ErrRejected)
	OverwriteRename  Overwrite = C.KNSOCK_OVERWRITE_RENAME  // keep both: "name (1).ext", …
)

// FileInfo describes a file as the server sees it (a copy: it stays valid after the callback).
type FileInfo struct {
	Name    string      // relative, "/"-separated name; in Handler, the name it was stored under
	Size    uint64      // size in bytes
	ModTime time.Time   // the sender's modification time (seconds)
	Mode    fs.FileMode // the sender's permission bits
	Peer    string      // the sender's "ip:port"
	// Path is empty in a PreValidator, the verified temporary file in a PostValidator and the
	// stored file in Handler.
	Path string
	// Identity is who the sender proved to be (its token's name or its client certificate's
	// common name); empty for an anonymous sender.
	Identity string
}

// ServerConfig configures StartServer. Zero values mean the library's defaults.
//
// The callbacks run on server worker threads, possibly several at once: they must be safe for
// concurrent use and must not block forever (Close waits for running callbacks). A validator
// returning a non-nil error refuses the file; the sender gets ErrRejected with the error's text
// as PeerReason. A panicking validator refuses the file with the panic message; a panic in
// Handler is reported to ErrorHandler. Callbacks must not call Close or Wait on their own server
// (Stop is allowed).
type ServerConfig struct {
	Dir string // directory to store files in; must exist
	// Addr is "host:port" to listen on, as net.Listen takes it: an empty host means every
	// interface (0.0.0.0), port 0 picks a free port (see Server.Port); "" means ":0".
	Addr           string
	MaxConnections int           // connections served at once, 1 to 1,000,000; default 65,536
	MaxFileSize    uint64        // largest file accepted; 0 for no limit
	ReserveBytes   uint64        // free space that must remain after a file is stored
	IdleTimeout    time.Duration // a connection making no progress this long is dropped; default 30 s
	ResumeTTL      time.Duration // keep an interrupted upload's data this long for a retry; default 0
	Overwrite      Overwrite     // what to do when the name exists; default OverwriteReplace
	NoCompression  bool          // refuse compressed content

	PreValidator  func(FileInfo) error // runs on the offer, before any data (Path is empty)
	PostValidator func(FileInfo) error // runs on the verified temporary file before the rename
	Handler       func(FileInfo)       // called for each stored file
	ErrorHandler  func(error)          // called with an *Error for each failed connection or file

	// Receiver limits; zero values mean the library's defaults.
	HeaderTimeout time.Duration // a whole frame must arrive within it; default 10 s
	MaxDecoders   int           // connections decoding zstd at once; default 16
	HashBudget    uint64        // bytes hashed per connection to answer skip-unchanged offers; default 64 GiB
	ModeMask      uint32        // Unix permission bits (0o7777 at most) a received file may keep; default 0o755
	KeepFDLimit   bool          // do not raise the soft descriptor limit at start

	// TLS and authentication (docs/security.md). Files are read at start; a bad combination
	// (tokens without TLS, confinement without authentication) makes StartServer fail with
	// ErrInvalidArgument and the reason.
	TLSCert, TLSKey   string            // serve TLS with this certificate chain and key (PEM)
	TLSSelfSigned     string            // or a self-signed identity kept in this directory (see TLSPin)
	TokensFile        string            // require a token: "NAME:HASH" lines (HashToken), mode 0600
	ClientCA          string            // accept client certificates issued by this CA (PEM)
	ConfineIdentities bool              // each identity writes beneath Dir/<identity>
	IdentityDirs      map[string]string // identity -> its directory beneath Dir
	AllowPlaintext    bool              // UNSAFE: also plain knsock senders on a TLS server
	AllowLegacy       bool              // UNSAFE: also kn-sock 0.3 uploads on a TLS server
	// AllowFetch serves fetches (FetchFiles): each authenticated identity gets back what it may
	// write (its confined directory). AllowAnonymousFetch (UNSAFE) serves clients that proved no
	// identity too: anyone who reaches the port reads every file.
	AllowFetch, AllowAnonymousFetch bool

	// S3 stores received files in an S3-compatible bucket, "s3://BUCKET" or "s3://BUCKET/PREFIX",
	// instead of Dir, which then only spools their content; FileInfo.Path in Handler is then
	// "s3://BUCKET/KEY". The bucket is opened (one HEAD request) at start: an unreachable store or
	// refused keys make StartServer fail with ErrStore. The other S3 fields need S3 (without it
	// they fail with ErrInvalidArgument); empty ones come from the standard AWS_* environment.
	// OverwriteRename is refused with a bucket.
	S3                       string
	S3Endpoint               string // "http(s)://host[:port]"; default AWS's
	S3PathStyle              bool   // with S3Endpoint: ENDPOINT/BUCKET/KEY URLs (MinIO, SeaweedFS)
	S3Region                 string // signed for; default "us-east-1"
	S3AccessKey, S3SecretKey string
	S3SessionToken           string // optional, with the keys
	S3CAFile                 string // trust these CAs (PEM) for an https endpoint

	// Store receives files into the program's own storage instead of Dir (which then only
	// spools) and of S3; see Store. A StatStore also answers skip-unchanged offers.
	Store Store
}

// serverState is what a server's callbacks reach through their cgo.Handle.
type serverState struct {
	pre, post func(FileInfo) error
	handler   func(FileInfo)
	onError   func(error)
}

func (ss *serverState) reportError(err *Error) {
	if ss.onError == nil {
		return
	}
	defer func() { _ = recover() }() // nowhere left to report a panicking error handler
	ss.onError(err)
}

// Server is a running knsock server.
type Server struct {
	host string
	port int
	pin  string

	mu        sync.RWMutex // held for reading around C calls, for writing to free
	ptr       *C.knsock_server
	closeOnce sync.Once
	closeErr  error
}

// StartServer binds and starts a server and returns without blocking. Call Close when done.
func StartServer(cfg ServerConfig) (*Server, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = ":0"
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	c := C.knsock_server_config_new()
	if c == nil {
		return nil, &Error{Code: CodeIO, Message: "out of memory"}
	}
	set := firstFailure(&err)
	setString := func(f func(*C.knsock_server_config, *C.char) C.enum_knsock_result, s, what string) {
		if err == nil {
			err = noNUL(s, what)
		}
		cs := C.CString(s)
		defer C.free(unsafe.Pointer(cs))
		set(f(c, cs), what)
	}
	setString(func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
		return C.knsock_server_config_set_directory(c, s)
	}, cfg.Dir, "directory")
	setString(func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
		return C.knsock_server_config_set_host(c, s)
	}, host, "host")
	set(C.knsock_server_config_set_port(c, C.uint16_t(port)), "port")
	if cfg.MaxConnections != 0 {
		n := cfg.MaxConnections
		if n < 0 {
			n = 0
		}
		set(C.knsock_server_config_set_max_connections(c, C.uint32_t(min(n, 1<<31))), "max connections")
	}
	set(C.knsock_server_config_set_max_file_size(c, C.uint64_t(cfg.MaxFileSize)), "max file size")
	set(C.knsock_server_config_set_reserve_bytes(c, C.uint64_t(cfg.ReserveBytes)), "reserve bytes")
	if cfg.IdleTimeout != 0 {
		set(C.knsock_server_config_set_idle_timeout_ms(c, millis(cfg.IdleTimeout)), "idle timeout")
	}
	if cfg.ResumeTTL > 0 {
		set(C.knsock_server_config_set_resume_ttl_ms(c, millis(cfg.ResumeTTL)), "resume TTL")
	}
	set(C.knsock_server_config_set_overwrite(c, C.uint32_t(cfg.Overwrite)), "overwrite policy")
	set(C.knsock_server_config_set_accept_compression(c, C.bool(!cfg.NoCompression)), "accept compression")
	if err == nil {
		err = cfg.applySecurity(c)
	}
	if err == nil {
		err = cfg.applyS3(c)
	}
	if err == nil && cfg.Store != nil {
		sh := newHandle(cfg.Store)
		code := C.knsock_go_set_store(c, C.uintptr_t(sh))
		if code != C.KNSOCK_RESULT_OK {
			deleteHandle(sh) // not taken: its finalizer will not run
		}
		set(code, "store")
	}

	ss := &serverState{pre: cfg.PreValidator, post: cfg.PostValidator, handler: cfg.Handler, onError: cfg.ErrorHandler}
	h := newHandle(ss)
	ud := C.knsock_go_userdata(C.uintptr_t(h))
	// From here on the finalizer owns the handle: it runs once the config and every server
	// started from it are freed and no callback can run any more.
	set(C.knsock_server_config_set_finalizer(c, C.knsock_finalizer_cb(C.knsock_go_finalizer_tramp), ud), "finalizer")
	if ss.pre != nil {
		set(C.knsock_server_config_set_pre_validator(c, C.knsock_validator_cb(C.knsock_go_pre_validator_tramp), ud), "pre-validator")
	}
	if ss.post != nil {
		set(C.knsock_server_config_set_post_validator(c, C.knsock_validator_cb(C.knsock_go_post_validator_tramp), ud), "post-validator")
	}
	if ss.handler != nil {
		set(C.knsock_server_config_set_received_handler(c, C.knsock_received_cb(C.knsock_go_received_tramp), ud), "received handler")
	}
	if ss.onError != nil {
		set(C.knsock_server_config_set_error_handler(c, C.knsock_error_cb(C.knsock_go_error_tramp), ud), "error handler")
	}

	var srv *C.knsock_server
	if err == nil {
		var cerr *C.knsock_error
		if code := C.knsock_server_start(c, &srv, &cerr); code != C.KNSOCK_RESULT_OK {
			err = takeError(code, cerr)
		}
	}
	C.knsock_server_config_free(c) // runs the finalizer now if no server was started
	if err != nil {
		return nil, err
	}
	pin := goString(C.knsock_server_tls_pin(srv))
	return &Server{host: host, port: int(C.knsock_server_port(srv)), pin: pin, ptr: srv}, nil
}

// TLSPin is the pin of the server's TLS key, "sha256//BASE64", for senders' WithPin; empty
// without TLS. With TLSSelfSigned it stays the same across restarts while the directory is kept.
func (s *Server) TLSPin() string { return s.pin }

// Port is the port the server listens on (the real one when 0 was configured).
func (s *Server) Port() int { return s.port }

// Addr is the "host:port" the server listens on.
func (s *Server) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Stop asks the server to stop: no new connections, transfers in flight aborted (their senders
// get an error, no temporary file is left). It may be called from the server's own callbacks,
// where it returns at once; elsewhere it waits for the workers. The server must still be closed.
func (s *Server) Stop() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr != nil {
		C.knsock_server_stop(s.ptr)
	}
}

// Wait blocks until the server stops (Stop or Close from another goroutine, or Stop from a
// callback). It returns nil once the server has stopped or was closed.
func (s *Server) Wait() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return nil
	}
	var cerr *C.knsock_error
	if code := C.knsock_server_wait(s.ptr, &cerr); code != C.KNSOCK_RESULT_OK {
		return takeError(code, cerr)
	}
	return nil
}

// Close stops the server (aborting transfers in flight: their senders get an error, no
// temporary file is left) and frees it once no callback runs any more. It returns the error that
// stopped the server, if one did (for example a failing listener), and nil otherwise; later calls
// return the same. It is safe to call from several goroutines and during transfers, but not from
// the server's own callbacks.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.RLock()
		code := C.knsock_server_stop(s.ptr) // ends a concurrent Wait, which holds the read lock
		s.mu.RUnlock()
		if err := check(code, "stopping the server"); err != nil {
			s.closeErr = err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var cerr *C.knsock_error
		if code := C.knsock_server_wait(s.ptr, &cerr); code != C.KNSOCK_RESULT_OK && s.closeErr == nil {
			s.closeErr = takeError(code, cerr)
		}
		C.knsock_server_free(s.ptr)
		s.ptr = nil
	})
	return s.closeErr
}

// Shutdown stops the server gracefully: it accepts no new connection and admits no new file (its
// sender is told the receiver is shutting down), while the files already under way finish; then
// it closes the server as Close does. When ctx has a deadline, transfers still running then are
// aborted. When ctx is done first, Shutdown returns ctx.Err() and the shutdown goes on in the
// background (Close aborts it at once). It returns Close's error otherwise.
func (s *Server) Shutdown(ctx context.Context) error {
	timeout := uint64(math.MaxUint64) // without limit
	if d, ok := ctx.Deadline(); ok {
		timeout = uint64(max(time.Until(d), 0).Milliseconds())
	}
	done := make(chan error, 1)
	go func() {
		s.mu.RLock()
		if s.ptr != nil {
			// Blocks until drained or the timeout; a concurrent Close ends it (its stop aborts).
			C.knsock_server_shutdown(s.ptr, C.uint64_t(timeout))
		}
		s.mu.RUnlock()
		done <- s.Close()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
