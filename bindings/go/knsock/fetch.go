package knsock

/*
#include <stdlib.h>
#include <knsock.h>
#include "trampolines.h"
*/
import "C"

import (
	"context"
	"unsafe"
)

// FetchFiles fetches remotes (names as they were sent: files, or directories with
// WithRecursive) from addr ("host:port"), a receiver that serves fetches
// (ServerConfig.AllowFetch), into the directory dest (created if missing). A name's last
// component and what lies beneath it land under dest. Each file is verified, given its mtime and
// its mode (within 0755), made durable and renamed into place; every name the receiver lists is
// checked, so none lands outside dest. From opts it takes the timeouts, retries, TLS and token,
// WithRecursive, WithInclude, WithExclude, WithSkipUnchanged, WithChecksum, WithProgress
// (bytes of the current file received, its size), WithFetchPartial and WithFetchModeMask.
//
// The results list every file the receiver listed (Path: where it is now; Skipped: it was
// already here unchanged), then one per requested name that gave nothing (an empty Path, Err
// ErrNotFound or ErrInvalidArgument). The error is non-nil, and the results nil, only when
// nothing could be listed: ctx already done, bad arguments, no connection, authentication, a
// receiver that does not serve fetches (ErrRejected) or refuses this client (ErrAuth, peer code
// 20).
//
// FetchFiles blocks the calling goroutine (and its OS thread); the progress callback runs on that
// thread. Cancelling ctx aborts the fetch at its next piece of content: the files not yet in place
// fail with an error matching both ctx.Err() and ErrCancelled, and nothing partial is left.
func FetchFiles(ctx context.Context, addr string, remotes []string, dest string, opts ...SendOption) ([]FileResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Code: CodeCancelled, Message: "transfer cancelled", Err: err}
	}
	f, err := newFetch(ctx, addr, remotes, dest, opts)
	if err != nil {
		return nil, err
	}
	defer f.free()
	if f.st.progress != nil || f.st.ctx != nil {
		h := newHandle(f.st)
		// knsock_fetch_files returns only once no callback can run any more.
		defer deleteHandle(h)
		f.cbs.progress = C.knsock_progress_cb(C.knsock_go_progress_tramp)
		f.cbs.userdata = C.knsock_go_userdata(C.uintptr_t(h))
	}
	var rep *C.knsock_batch_report
	var cerr *C.knsock_error
	code := C.knsock_fetch_files(f.chost, C.uint16_t(f.port), f.cnames.array(), C.size_t(len(f.cnames)),
		f.cdest, f.copts, f.cbs, &rep, &cerr)
	return f.st.batchResults(code, rep, cerr)
}

// FetchFile fetches one name (a file, or a directory with WithRecursive) as FetchFiles does and
// returns nil only when every file it lists was fetched or found unchanged; otherwise the first
// error. Cancelling ctx cancels the fetch (the error then matches ctx.Err() and ErrCancelled).
// To fetch in the background, call it from a goroutine.
func FetchFile(ctx context.Context, addr string, remote string, dest string, opts ...SendOption) error {
	results, err := FetchFiles(ctx, addr, []string{remote}, dest, opts...)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// fetch is what FetchFiles prepares for C; free releases it.
type fetch struct {
	chost, cdest *C.char
	port         int
	cnames       cStrings
	copts        *C.knsock_send_options
	cbs          *C.knsock_fetch_callbacks // C memory: C reads it during the call
	st           *sendState
}

func newFetch(ctx context.Context, addr string, remotes []string, dest string, opts []SendOption) (*fetch, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	for _, s := range append([]string{host, dest}, remotes...) {
		if err := noNUL(s, "argument"); err != nil {
			return nil, err
		}
	}
	var cfg sendConfig
	for _, o := range opts {
		o(&cfg)
	}
	copts, err := cfg.newOptions()
	if err != nil {
		return nil, err
	}
	if err := cfg.setBatchOptions(copts); err != nil {
		C.knsock_send_options_free(copts)
		return nil, err
	}
	if err := cfg.setFetchOptions(copts); err != nil {
		C.knsock_send_options_free(copts)
		return nil, err
	}
	f := &fetch{chost: C.CString(host), cdest: C.CString(dest), port: port, copts: copts,
		st: &sendState{progress: cfg.progress}}
	f.cbs = (*C.knsock_fetch_callbacks)(C.calloc(1, C.size_t(unsafe.Sizeof(C.knsock_fetch_callbacks{}))))
	if ctx.Done() != nil {
		f.st.ctx = ctx
	}
	f.cnames = newCStrings(remotes)
	return f, nil
}

// WithFetchPartial keeps, for FetchFiles only, the data of a file whose fetch was cut short (a
// lost connection, a timeout, a cancel) hidden beside its name, so that a retry or a later
// fetch of the same file resumes where it ended (the whole file is still verified). Default:
// off, an interrupted fetch leaves nothing. Sends ignore it.
func WithFetchPartial(on bool) SendOption { return func(c *sendConfig) { c.fetchPartial = &on } }

// WithFetchModeMask sets, for FetchFiles only, the permission bits a fetched file may keep (the
// receiver's mode within mask; at most 07777, else ErrInvalidArgument). Default: 0755. Sends
// ignore it.
func WithFetchModeMask(mask uint32) SendOption {
	return func(c *sendConfig) { c.fetchModeMask = &mask }
}

// setFetchOptions sets the options only FetchFiles uses on o (which the caller still owns).
func (c *sendConfig) setFetchOptions(o *C.knsock_send_options) error {
	var err error
	set := firstFailure(&err)
	if c.fetchPartial != nil {
		set(C.knsock_send_options_set_fetch_partial(o, C.bool(*c.fetchPartial)), "fetch partial")
	}
	if c.fetchModeMask != nil {
		set(C.knsock_send_options_set_fetch_mode_mask(o, C.uint32_t(*c.fetchModeMask)), "fetch mode mask")
	}
	return err
}

func (f *fetch) free() {
	f.cnames.free()
	C.free(unsafe.Pointer(f.chost))
	C.free(unsafe.Pointer(f.cdest))
	C.free(unsafe.Pointer(f.cbs))
	C.knsock_send_options_free(f.copts)
}
