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

// ReceiverResult is what happened at one receiver of SendFilesMulti.
type ReceiverResult struct {
	Addr string // the receiver, as given
	// Err is non-nil (an *Error: ErrConnect, ErrTimeout, …) when the receiver could not be
	// reached at all; Files is then nil.
	Err   error
	Files []FileResult // each file's outcome at this receiver, in order
}

// SendFilesMulti sends the files paths name to each receiver in addrs ("host:port") at once,
// one connection and one thread per receiver, each as SendFiles would (the same options, each
// receiver deciding for itself what to accept, skip, resume or take as a delta). Each file is
// read once while the receivers keep up with one another; a slow or dead receiver never holds
// up the others.
//
// The error is non-nil, and the results nil, only for bad arguments (no receivers, a bad
// address or path list) or when ctx was already done. Otherwise there is one result per
// receiver, in the order of addrs, unreachable receivers included.
//
// WithBatchProgress's callback gets each receiver's progress with BatchProgress.Receiver set
// to its index in addrs; it runs on the receivers' threads, for different receivers at the same
// time, so it must be safe for concurrent use. An error it returns aborts that receiver only.
// WithProgress's per-file callback is not called. Cancelling ctx aborts every receiver at its
// next progress step, as in SendFiles.
func SendFilesMulti(ctx context.Context, addrs []string, paths []string, opts ...SendOption) ([]ReceiverResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Code: CodeCancelled, Message: "transfer cancelled", Err: err}
	}
	// A Go slice of C structs holding C strings: C reads it only during the call.
	receivers := make([]C.knsock_receiver, len(addrs))
	defer func() {
		for _, r := range receivers {
			C.free(unsafe.Pointer(r.host))
		}
	}()
	for i, addr := range addrs {
		host, port, err := splitAddr(addr)
		if err != nil {
			return nil, err
		}
		if err := noNUL(host, "host"); err != nil {
			return nil, err
		}
		receivers[i] = C.knsock_receiver{host: C.CString(host), port: C.uint16_t(port)}
	}
	b, err := newBatch(ctx, paths, opts)
	if err != nil {
		return nil, err
	}
	defer b.free()
	var cb C.knsock_multi_progress_cb
	var ud unsafe.Pointer
	if b.st.batch != nil || b.st.ctx != nil {
		h := newHandle(b.st)
		// knsock_send_files_multi returns only once no callback can run any more.
		defer deleteHandle(h)
		cb, ud = C.knsock_multi_progress_cb(C.knsock_go_multi_progress_tramp), C.knsock_go_userdata(C.uintptr_t(h))
	}
	var crecv *C.knsock_receiver
	if len(receivers) > 0 {
		crecv = &receivers[0]
	}

	var rep *C.knsock_multi_report
	var cerr *C.knsock_error
	code := C.knsock_send_files_multi(crecv, C.size_t(len(receivers)), b.cpaths.array(), C.size_t(len(b.cpaths)),
		b.copts, cb, ud, &rep, &cerr)
	if code != C.KNSOCK_RESULT_OK {
		e := takeError(code, cerr)
		b.st.explain(e)
		return nil, e
	}
	defer C.knsock_multi_report_free(rep)
	results := make([]ReceiverResult, len(addrs))
	for i := range results {
		ci := C.size_t(i)
		results[i].Addr = addrs[i]
		if rc := C.knsock_multi_report_result(rep, ci); rc != C.KNSOCK_RESULT_OK {
			// Owned by the report: copied, not freed.
			results[i].Err = errorFrom(C.int(rc), C.knsock_multi_report_error(rep, ci))
			continue
		}
		results[i].Files = b.st.fileResults(C.knsock_multi_report_batch(rep, ci))
	}
	return results, nil
}
