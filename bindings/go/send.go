package knsock

/*
#include <stdlib.h>
#include "knsock.h"
#include "trampolines.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// SendOption configures SendFile.
type SendOption func(*sendConfig)

type sendConfig struct {
	timeout, connectTimeout, retryDelay *time.Duration
	chunkSize                           *int
	retries                             *uint32
	remoteName                          *string
	compress, legacy, skipUnchanged     *bool
	showProgress                        *bool
	progress                            func(sent, total uint64) error
}

// WithTimeout sets the idle timeout: a read or write that makes no progress for this long fails
// with ErrTimeout (default 30 s). It does not bound the whole transfer; use a context for that.
func WithTimeout(d time.Duration) SendOption { return func(c *sendConfig) { c.timeout = &d } }

// WithConnectTimeout sets the connect timeout (default 10 s).
func WithConnectTimeout(d time.Duration) SendOption {
	return func(c *sendConfig) { c.connectTimeout = &d }
}

// WithChunkSize sets the bytes read and sent per step, 1 to 64 MiB (default 256 KiB).
func WithChunkSize(n int) SendOption { return func(c *sendConfig) { c.chunkSize = &n } }

// WithProgress sets a callback called with the bytes sent so far and the file's size: once with
// sent == 0, after each chunk, the last time with sent == total. It runs on the library's
// transfer thread, not the caller's goroutine. Returning a non-nil error aborts the transfer:
// SendFile then fails with ErrAbortedByCallback wrapping that error, and the receiver keeps no
// file. A panic is recovered and treated the same way.
func WithProgress(f func(sent, total uint64) error) SendOption {
	return func(c *sendConfig) { c.progress = f }
}

// WithRemoteName sets the name the receiver stores the file under (may contain "/" for
// subdirectories). Default: the file's base name.
func WithRemoteName(name string) SendOption { return func(c *sendConfig) { c.remoteName = &name } }

// WithRetries sets how many attempts follow the first when a transfer fails in a way a new
// connection may cure; refusals are never retried. Default 0.
func WithRetries(n uint32) SendOption { return func(c *sendConfig) { c.retries = &n } }

// WithRetryDelay sets the wait before the first retry; it doubles with each retry, up to a
// minute. Default 1 s.
func WithRetryDelay(d time.Duration) SendOption { return func(c *sendConfig) { c.retryDelay = &d } }

// WithCompress compresses with zstd when the receiver accepts it (data that does not shrink is
// sent as it is).
func WithCompress(on bool) SendOption { return func(c *sendConfig) { c.compress = &on } }

// WithLegacy speaks kn-sock 0.3's protocol, to reach an existing kn-sock 0.3 server. That
// protocol has no checksum and no acknowledgement.
func WithLegacy(on bool) SendOption { return func(c *sendConfig) { c.legacy = &on } }

// WithSkipUnchanged skips sending when the receiver already holds the file with the same size
// and checksum (it still counts as delivered).
func WithSkipUnchanged(on bool) SendOption { return func(c *sendConfig) { c.skipUnchanged = &on } }

// WithShowProgress draws the library's progress bar on stderr.
func WithShowProgress(on bool) SendOption { return func(c *sendConfig) { c.showProgress = &on } }

// millis converts a duration for the C ABI, rounding a positive sub-millisecond value up.
func millis(d time.Duration) C.uint64_t {
	if d <= 0 {
		return 0 // the library refuses it with ErrInvalidArgument
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond)
}

// newOptions builds a knsock_send_options; the caller frees it.
func (c *sendConfig) newOptions() (*C.knsock_send_options, error) {
	o := C.knsock_send_options_new()
	if o == nil {
		return nil, &Error{Code: CodeIO, Message: "out of memory"}
	}
	var err error
	set := func(code C.enum_knsock_result, what string) {
		if err == nil {
			err = check(code, what)
		}
	}
	if c.timeout != nil {
		set(C.knsock_send_options_set_timeout_ms(o, millis(*c.timeout)), "timeout")
	}
	if c.connectTimeout != nil {
		set(C.knsock_send_options_set_connect_timeout_ms(o, millis(*c.connectTimeout)), "connect timeout")
	}
	if c.retryDelay != nil {
		d := *c.retryDelay
		if d < 0 {
			d = 0
		}
		set(C.knsock_send_options_set_retry_delay_ms(o, C.uint64_t(d/time.Millisecond)), "retry delay")
	}
	if c.chunkSize != nil {
		n := *c.chunkSize
		if n < 0 {
			n = 0
		}
		set(C.knsock_send_options_set_chunk_size(o, C.size_t(n)), "chunk size")
	}
	if c.retries != nil {
		set(C.knsock_send_options_set_retries(o, C.uint32_t(*c.retries)), "retries")
	}
	if c.remoteName != nil {
		if err := noNUL(*c.remoteName, "remote name"); err != nil {
			C.knsock_send_options_free(o)
			return nil, err
		}
		cs := C.CString(*c.remoteName)
		set(C.knsock_send_options_set_remote_name(o, cs), "remote name")
		C.free(unsafe.Pointer(cs))
	}
	if c.compress != nil {
		set(C.knsock_send_options_set_compress(o, C.bool(*c.compress)), "compress")
	}
	if c.legacy != nil {
		set(C.knsock_send_options_set_legacy(o, C.bool(*c.legacy)), "legacy")
	}
	if c.skipUnchanged != nil {
		set(C.knsock_send_options_set_skip_unchanged(o, C.bool(*c.skipUnchanged)), "skip unchanged")
	}
	if c.showProgress != nil {
		set(C.knsock_send_options_set_show_progress(o, C.bool(*c.showProgress)), "show progress")
	}
	if err != nil {
		C.knsock_send_options_free(o)
		return nil, err
	}
	return o, nil
}

// sendState is what a transfer's callbacks reach through their cgo.Handle.
type sendState struct {
	progress func(sent, total uint64) error
	done     chan *Error // receives the outcome (nil on success) exactly once

	mu    sync.Mutex
	cbErr error // why the progress callback aborted
}

// SendFile sends the file at path to host:port and returns once the receiver has verified it,
// made it durable and put it in place (nil), or once it failed (an *Error).
//
// Cancelling ctx (or reaching its deadline) cancels the transfer: the receiver keeps no file and
// the error satisfies both errors.Is(err, ctx.Err()) and errors.Is(err, ErrCancelled). If the
// transfer completed anyway before the cancellation reached it, SendFile returns nil.
func SendFile(ctx context.Context, host string, port int, path string, opts ...SendOption) error {
	if err := ctx.Err(); err != nil {
		return &Error{Code: CodeCancelled, Message: "transfer cancelled", Err: err}
	}
	if port < 0 || port > 65535 {
		return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("port %d out of range", port)}
	}
	var cfg sendConfig
	for _, o := range opts {
		o(&cfg)
	}
	for _, s := range [][2]string{{host, "host"}, {path, "path"}} {
		if err := noNUL(s[0], s[1]); err != nil {
			return err
		}
	}
	copts, err := cfg.newOptions()
	if err != nil {
		return err
	}
	st := &sendState{progress: cfg.progress, done: make(chan *Error, 1)}
	h := newHandle(st)
	ud := C.knsock_go_userdata(C.uintptr_t(h))
	if cfg.progress != nil {
		// The transfer copies the options when it starts, callback and userdata included.
		C.knsock_send_options_set_progress_callback(copts, C.knsock_progress_cb(C.knsock_go_progress_tramp), ud)
	}

	chost, cpath := C.CString(host), C.CString(path)
	var t *C.knsock_transfer
	var cerr *C.knsock_error
	code := C.knsock_send_file_async(chost, C.uint16_t(port), cpath, copts,
		C.knsock_done_cb(C.knsock_go_done_tramp), ud, &t, &cerr)
	C.free(unsafe.Pointer(chost))
	C.free(unsafe.Pointer(cpath))
	C.knsock_send_options_free(copts)
	if code != C.KNSOCK_RESULT_OK {
		deleteHandle(h) // no callback was or will be called
		return takeError(code, cerr)
	}

	var res *Error
	var ctxErr error
	select {
	case res = <-st.done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		C.knsock_transfer_cancel(t)
		res = <-st.done
	}
	// on_done has run; freeing joins the transfer thread, after which no callback can run.
	C.knsock_transfer_free(t)
	deleteHandle(h)

	if res == nil {
		return nil
	}
	switch {
	case ctxErr != nil:
		res.Err = ctxErr
	case res.Code == CodeAbortedByCallback:
		st.mu.Lock()
		res.Err = st.cbErr
		st.mu.Unlock()
	}
	return res
}
