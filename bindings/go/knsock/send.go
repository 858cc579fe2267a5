package knsock

/*
#include <stdlib.h>
#include <knsock.h>
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

// SendOption configures SendFile and SendFiles. Options that only concern a list of files
// (WithRecursive, WithFollowSymlinks, WithInclude, WithExclude, WithStopOnError) are ignored by
// SendFile; WithRemoteName and WithLegacy are ignored by SendFiles.
type SendOption func(*sendConfig)

type sendConfig struct {
	timeout, connectTimeout, retryDelay *time.Duration
	chunkSize                           *int
	retries                             *uint32
	remoteName                          *string
	compress, legacy, skipUnchanged     *bool
	checksum, delta                     *bool
	showProgress                        *bool
	progress                            func(sent, total uint64) error
	batchProgress                       func(BatchProgress) error

	// SendFiles only: which files the walk picks and whether the batch stops at a failure.
	recursive, followSymlinks, stopOnError *bool
	include, exclude                       []string

	// FetchFiles only: partial copies kept, the mode mask (fetch.go).
	fetchPartial  *bool
	fetchModeMask *uint32

	tls tlsConfig // WithTLS, WithPin, WithToken, … (tls.go)
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
// sent == 0, after each chunk, the last time with sent == total (with SendFiles, for each file
// in turn). It runs on the library's transfer thread, not the caller's goroutine (SendFiles:
// the calling goroutine's thread). Returning a non-nil error aborts the transfer: SendFile then
// fails with ErrAbortedByCallback wrapping that error, and the receiver keeps no file (SendFiles:
// every file not yet delivered fails so). A panic is recovered and treated the same way.
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

// WithSkipUnchanged skips sending when the receiver already holds the file unchanged (it still
// counts as delivered): by default the same size and modification time (rsync's quick check,
// nothing read), with WithChecksum the same content digest.
func WithSkipUnchanged(on bool) SendOption { return func(c *sendConfig) { c.skipUnchanged = &on } }

// WithChecksum makes WithSkipUnchanged compare content digests (like rsync -c) rather than
// size and modification time. Default: off.
func WithChecksum(on bool) SendOption { return func(c *sendConfig) { c.checksum = &on } }

// WithDelta sends only the changed data of a file of at least 1 MiB the receiver holds an
// older copy of. Default: on.
func WithDelta(on bool) SendOption { return func(c *sendConfig) { c.delta = &on } }

// WithShowProgress draws the library's progress bar on stderr.
func WithShowProgress(on bool) SendOption { return func(c *sendConfig) { c.showProgress = &on } }

// BatchProgress is where a batch stands, for WithBatchProgress.
type BatchProgress struct {
	Name         string // the current file, as the receiver will name it ("logs/app.log")
	Index, Count int    // its place in the list (from 0) and how many files the list has
	// FileSent and FileTotal are the bytes of this file sent so far and its size.
	FileSent, FileTotal uint64
	// Sent and Total are the bytes of the whole list dealt with so far (earlier files count
	// whole whether they were sent, skipped or failed) and the list's size. Sent == Total at
	// the last call when every file was sent or skipped.
	Sent, Total uint64
	// Receiver is the receiver's index in the addresses given to SendFilesMulti (0 otherwise).
	Receiver int
}

// WithBatchProgress sets a callback with the whole list's progress: called where the per-file
// progress callback is (after it, when both are set) and once for each file skipped as
// unchanged. SendFile calls it too, as for a list of one (Index 0, Count 1); neither calls it
// for WithLegacy sends. It runs on the thread doing the transfer (SendFilesMulti: on each
// receiver's thread, concurrently; see there). Returning a non-nil error (or
// panicking) aborts like WithProgress: the files not yet delivered fail with
// ErrAbortedByCallback wrapping that error. A file refused before its content was sent gets no
// call, but a small file (up to 64 KiB) in a batch is sent right after its offer, so a refused
// one may still show progress.
func WithBatchProgress(f func(p BatchProgress) error) SendOption {
	return func(c *sendConfig) { c.batchProgress = f }
}

// WithRecursive makes SendFiles descend into the directories it is given; a file beneath one
// is stored under its relative name ("dir/sub/file"). Without it (the default) a directory is
// an error (ErrInvalidArgument). Ignored by SendFile.
func WithRecursive(on bool) SendOption { return func(c *sendConfig) { c.recursive = &on } }

// WithFollowSymlinks makes SendFiles follow symlinks while walking (loops are detected). By
// default symlinks are skipped. Ignored by SendFile.
func WithFollowSymlinks(on bool) SendOption { return func(c *sendConfig) { c.followSymlinks = &on } }

// WithInclude adds globs a file's relative name must match for SendFiles to send it, e.g.
// "*.log" ("*" also crosses "/"); with several, a file must match one. Options add up. A
// malformed glob makes SendFiles fail with ErrInvalidArgument. Ignored by SendFile.
func WithInclude(globs ...string) SendOption {
	return func(c *sendConfig) { c.include = append(c.include, globs...) }
}

// WithExclude adds globs that drop the files whose relative names match, whatever WithInclude
// says. Ignored by SendFile.
func WithExclude(globs ...string) SendOption {
	return func(c *sendConfig) { c.exclude = append(c.exclude, globs...) }
}

// WithStopOnError makes SendFiles stop offering files after the first one that fails; the
// rest get ErrCancelled. By default every file is attempted. Ignored by SendFile.
func WithStopOnError(on bool) SendOption { return func(c *sendConfig) { c.stopOnError = &on } }

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
	set := firstFailure(&err)
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
	if c.checksum != nil {
		set(C.knsock_send_options_set_checksum(o, C.bool(*c.checksum)), "checksum")
	}
	if c.delta != nil {
		set(C.knsock_send_options_set_delta(o, C.bool(*c.delta)), "delta")
	}
	if c.skipUnchanged != nil {
		set(C.knsock_send_options_set_skip_unchanged(o, C.bool(*c.skipUnchanged)), "skip unchanged")
	}
	if c.showProgress != nil {
		set(C.knsock_send_options_set_show_progress(o, C.bool(*c.showProgress)), "show progress")
	}
	if err == nil {
		err = c.tls.apply(o)
	}
	if err != nil {
		C.knsock_send_options_free(o)
		return nil, err
	}
	return o, nil
}

// setBatchOptions sets the options only SendFiles uses on o (which the caller still owns).
func (c *sendConfig) setBatchOptions(o *C.knsock_send_options) error {
	var err error
	set := firstFailure(&err)
	if c.recursive != nil {
		set(C.knsock_send_options_set_recursive(o, C.bool(*c.recursive)), "recursive")
	}
	if c.followSymlinks != nil {
		set(C.knsock_send_options_set_follow_symlinks(o, C.bool(*c.followSymlinks)), "follow symlinks")
	}
	if c.stopOnError != nil {
		set(C.knsock_send_options_set_stop_on_error(o, C.bool(*c.stopOnError)), "stop on error")
	}
	globs := func(list []string, what string, add func(*C.knsock_send_options, *C.char) C.enum_knsock_result) {
		for _, g := range list {
			if err != nil {
				return
			}
			if err = noNUL(g, what); err != nil {
				return
			}
			cs := C.CString(g)
			code := add(o, cs)
			C.free(unsafe.Pointer(cs))
			if code != C.KNSOCK_RESULT_OK {
				err = &Error{Code: Code(code), Message: fmt.Sprintf("%s %q: %v", what, g, Code(code))}
			}
		}
	}
	globs(c.include, "include glob", func(o *C.knsock_send_options, g *C.char) C.enum_knsock_result {
		return C.knsock_send_options_add_include(o, g)
	})
	globs(c.exclude, "exclude glob", func(o *C.knsock_send_options, g *C.char) C.enum_knsock_result {
		return C.knsock_send_options_add_exclude(o, g)
	})
	return err
}

// sendState is what a transfer's callbacks reach through their cgo.Handle.
type sendState struct {
	progress func(sent, total uint64) error
	batch    func(BatchProgress) error
	done     chan *Error // SendFile: receives the outcome (nil on success) exactly once
	// ctx is set for SendFiles, which has no transfer to cancel: every callback checks it and
	// aborts the batch once it is done. ctx.Err() is safe from any thread and sees a
	// cancellation made from inside a callback at once, so no watcher goroutine is needed.
	ctx context.Context

	mu     sync.Mutex
	cbErr  error // why a progress callback aborted (its error or recovered panic)
	ctxErr error // SendFiles: the ctx.Err() that made a callback abort
}

// callback runs the user callback f (nil for none) for a trampoline and tells whether the
// transfer goes on, recording why not.
func (st *sendState) callback(what string, f func() error) bool {
	if st.cancelled() {
		return false
	}
	if f != nil {
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = recovered(what, r)
				}
			}()
			return f()
		}()
		if err != nil {
			st.mu.Lock()
			if st.cbErr == nil && st.ctxErr == nil {
				st.cbErr = err
			}
			st.mu.Unlock()
			return false
		}
	}
	return !st.cancelled()
}

// cancelled reports whether st.ctx is done, recording its error as the reason to abort.
func (st *sendState) cancelled() bool {
	if st.ctx == nil {
		return false
	}
	err := st.ctx.Err()
	if err == nil {
		return false
	}
	st.mu.Lock()
	if st.cbErr == nil && st.ctxErr == nil {
		st.ctxErr = err
	}
	st.mu.Unlock()
	return true
}

// explain fills in the Go-side cause of an error a callback caused: the context's error for a
// cancelled batch (the error then also matches ErrCancelled), else the callback's error.
func (st *sendState) explain(e *Error) {
	if e.Code != CodeAbortedByCallback {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctxErr != nil {
		e.Code, e.Message, e.Err = CodeCancelled, "transfer cancelled", st.ctxErr
		return
	}
	e.Err = st.cbErr
}

// setCallbacks installs the trampolines o needs for st, with userdata ud: the per-file one for
// a progress callback, the batch one for a batch callback or a cancellable context.
func (st *sendState) setCallbacks(o *C.knsock_send_options, ud unsafe.Pointer) {
	if st.progress != nil {
		C.knsock_send_options_set_progress_callback(o, C.knsock_progress_cb(C.knsock_go_progress_tramp), ud)
	}
	if st.batch != nil || st.ctx != nil {
		C.knsock_send_options_set_batch_progress_callback(o,
			C.knsock_batch_progress_cb(C.knsock_go_batch_progress_tramp), ud)
	}
}

// SendFile sends the file at path to addr ("host:port", e.g. "127.0.0.1:9000" or "[::1]:9000")
// and returns once the receiver has verified it,
// made it durable and put it in place (nil), or once it failed (an *Error).
//
// Cancelling ctx (or reaching its deadline) cancels the transfer: the receiver keeps no file and
// the error satisfies both errors.Is(err, ctx.Err()) and errors.Is(err, ErrCancelled). If the
// transfer completed anyway before the cancellation reached it, SendFile returns nil.
func SendFile(ctx context.Context, addr string, path string, opts ...SendOption) error {
	host, port, cfg, err := sendStart(ctx, addr, path, "path", opts)
	if err != nil {
		return err
	}
	copts, err := cfg.newOptions()
	if err != nil {
		return err
	}
	st := &sendState{progress: cfg.progress, batch: cfg.batchProgress, done: make(chan *Error, 1)}
	h := newHandle(st)
	ud := C.knsock_go_userdata(C.uintptr_t(h))
	// The transfer copies the options when it starts, callbacks and userdata included.
	st.setCallbacks(copts, ud)

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
	if ctxErr != nil {
		res.Err = ctxErr
	} else {
		st.explain(res)
	}
	return res
}

// sendStart checks what a send of one source starts with: ctx not done yet, the address, no
// NUL in the host or in s (the source's path or name, called what), and gathers the options.
func sendStart(ctx context.Context, addr, s, what string, opts []SendOption) (string, int, sendConfig, error) {
	var cfg sendConfig
	if err := ctx.Err(); err != nil {
		return "", 0, cfg, &Error{Code: CodeCancelled, Message: "transfer cancelled", Err: err}
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return "", 0, cfg, err
	}
	for _, o := range opts {
		o(&cfg)
	}
	for _, v := range [][2]string{{host, "host"}, {s, what}} {
		if err := noNUL(v[0], v[1]); err != nil {
			return "", 0, cfg, err
		}
	}
	return host, port, cfg, nil
}
