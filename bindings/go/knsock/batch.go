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

// FileResult is what happened to one file of SendFiles.
type FileResult struct {
	Path    string // the local path
	Name    string // the name on the receiver, e.g. "logs/app.log"
	Bytes   uint64 // bytes delivered (0 when the file failed)
	Skipped bool   // the receiver already held it unchanged (WithSkipUnchanged): nothing was sent
	// BytesSent are the content bytes that crossed the wire (compressed, delta frames);
	// BytesReused the bytes the receiver took from its older copy (delta) or kept data (resume).
	BytesSent, BytesReused uint64
	// Err is nil when the file was delivered (or skipped), else an *Error: ErrRejected with the
	// receiver's PeerReason when it refused the file, errors matching both ctx.Err() and
	// ErrCancelled when ctx ended the batch before the file was delivered, ErrCancelled alone
	// for a file not offered after an earlier failure (WithStopOnError), ErrAbortedByCallback
	// wrapping a progress callback's error.
	Err error
}

// SendFiles sends the files paths name to addr ("host:port") over one connection, pipelined: each file
// is delivered as by SendFile (verified, durable, in place when its Err is nil). A directory is
// sent with every file beneath it when WithRecursive is on, and WithInclude, WithExclude and
// WithFollowSymlinks choose the files. The results list every file picked, in order.
//
// The error is non-nil, and the results nil, only when nothing could be attempted: ctx was
// already done, a bad path list (a missing path: ErrNotFound; a directory without
// WithRecursive, a malformed glob, a NUL byte: ErrInvalidArgument), or no connection. Once the
// batch ran, every outcome, failures included, is in the results.
//
// SendFiles blocks the calling goroutine (and its OS thread); the callbacks run on that
// thread. Cancelling ctx aborts the batch at the next progress step (the library calls back
// once per chunk and once per skipped file): the files not confirmed delivered fail with an
// error matching both ctx.Err() and ErrCancelled. The receiver keeps no partial file; a file
// sent whole whose confirmation had not arrived yet may still be stored (reported failed, never
// the reverse). A connect attempt, a retry's wait, or the wait for the receiver's last
// verdicts is not interrupted; the connect and idle timeouts bound them.
func SendFiles(ctx context.Context, addr string, paths []string, opts ...SendOption) ([]FileResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Code: CodeCancelled, Message: "transfer cancelled", Err: err}
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	if err := noNUL(host, "host"); err != nil {
		return nil, err
	}
	b, err := newBatch(ctx, paths, opts)
	if err != nil {
		return nil, err
	}
	defer b.free()
	if b.st.progress != nil || b.st.batch != nil || b.st.ctx != nil {
		h := newHandle(b.st)
		// knsock_send_files returns only once no callback can run any more.
		defer deleteHandle(h)
		b.st.setCallbacks(b.copts, C.knsock_go_userdata(C.uintptr_t(h)))
	}
	chost := C.CString(host)
	defer C.free(unsafe.Pointer(chost))

	var rep *C.knsock_batch_report
	var cerr *C.knsock_error
	code := C.knsock_send_files(chost, C.uint16_t(port), b.cpaths.array(), C.size_t(len(b.cpaths)), b.copts, &rep, &cerr)
	return b.st.batchResults(code, rep, cerr)
}

// batch is what SendFiles and SendFilesMulti prepare: the C options, the paths as C strings and
// the callbacks' state.
type batch struct {
	copts  *C.knsock_send_options
	cpaths cStrings
	st     *sendState
}

// newBatch applies opts and copies paths for C; free releases both.
func newBatch(ctx context.Context, paths []string, opts []SendOption) (*batch, error) {
	var cfg sendConfig
	for _, o := range opts {
		o(&cfg)
	}
	for _, p := range paths {
		if err := noNUL(p, "path"); err != nil {
			return nil, err
		}
	}
	copts, err := cfg.newOptions()
	if err != nil {
		return nil, err
	}
	if err := cfg.setBatchOptions(copts); err != nil {
		C.knsock_send_options_free(copts)
		return nil, err
	}
	b := &batch{copts: copts, st: &sendState{progress: cfg.progress, batch: cfg.batchProgress}}
	if ctx.Done() != nil {
		b.st.ctx = ctx
	}
	b.cpaths = newCStrings(paths)
	return b, nil
}

func (b *batch) free() {
	b.cpaths.free()
	C.knsock_send_options_free(b.copts)
}

// batchResults is a batch call's outcome (a send or a fetch): each file's result from its
// report, or the call's error when there is no report.
func (st *sendState) batchResults(code C.enum_knsock_result, rep *C.knsock_batch_report, cerr *C.knsock_error) ([]FileResult, error) {
	if code != C.KNSOCK_RESULT_OK {
		e := takeError(code, cerr)
		st.explain(e)
		return nil, e
	}
	defer C.knsock_batch_report_free(rep)
	return st.fileResults(rep), nil
}

// fileResults copies each file's outcome out of a batch report (which keeps its ownership).
func (st *sendState) fileResults(rep *C.knsock_batch_report) []FileResult {
	n := int(C.knsock_batch_report_count(rep))
	results := make([]FileResult, n)
	for i := range results {
		ci := C.size_t(i)
		r := &results[i]
		r.Path = goString(C.knsock_batch_report_path(rep, ci))
		r.Name = goString(C.knsock_batch_report_name(rep, ci))
		r.Bytes = uint64(C.knsock_batch_report_bytes(rep, ci))
		r.Skipped = bool(C.knsock_batch_report_skipped(rep, ci))
		r.BytesSent = uint64(C.knsock_batch_report_bytes_sent(rep, ci))
		r.BytesReused = uint64(C.knsock_batch_report_bytes_reused(rep, ci))
		if fc := C.knsock_batch_report_result(rep, ci); fc != C.KNSOCK_RESULT_OK {
			// The report owns its error objects: copied, not freed.
			e := errorFrom(C.int(fc), C.knsock_batch_report_error(rep, ci))
			st.explain(e)
			r.Err = e
		}
	}
	return results
}
