package knsock

// SendStream: content read from an io.Reader, of a stated size or of one known only at its end
// (knsock_send_stream).

/*
#include <stdlib.h>
#include <knsock.h>
#include "trampolines.h"
*/
import "C"

import (
	"context"
	"io"
	"unsafe"
)

// SizeUnknown is the size to give SendStream when the content's size is known only at its end.
const SizeUnknown int64 = -1

// readState is what the read trampoline reaches through its cgo.Handle.
type readState struct {
	ctx context.Context
	r   io.Reader
	err error // why reading stopped: the reader's error, a recovered panic, or ctx.Err()
}

// read fills p from the reader: some bytes, 0 at its end, or an error that aborts the send.
func (st *readState) read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, recovered("reader", r)
		}
	}()
	for tries := 0; tries < 100; tries++ {
		if err := st.ctx.Err(); err != nil {
			return 0, err
		}
		n, err := st.r.Read(p)
		if n > 0 {
			return n, nil // an error with bytes comes again at the next read
		}
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// SendStream sends what r yields, until io.EOF, to addr as the file name, and returns once the
// receiver has verified it, made it durable and put it in place (nil), or once it failed (an
// *Error). size is the content's size, or SizeUnknown: the size is then known only at the end
// (the receiver enforces its maximum file size as the bytes arrive: ErrRejected with its
// PeerReason), and WithProgress gets a total of 0. A reader that fails (or panics) aborts the
// send: ErrAbortedByCallback wrapping its error; a stated size the reader does not meet fails
// with ErrIO. In both cases the receiver stores nothing. Cancelling ctx aborts the send at the
// next read (ErrCancelled wrapping ctx.Err()); a Read that blocks is not interrupted. There is
// no retry and no resume (WithRetries and WithRemoteName do not apply): a stream cannot be read
// twice. r is read on the calling goroutine's thread, one Read at a time.
func SendStream(ctx context.Context, addr, name string, r io.Reader, size int64, opts ...SendOption) error {
	host, port, cfg, err := sendStart(ctx, addr, name, "name", opts)
	if err != nil {
		return err
	}
	if r == nil {
		return &Error{Code: CodeInvalidArgument, Message: "reader is nil"}
	}
	copts, err := cfg.newOptions()
	if err != nil {
		return err
	}
	defer C.knsock_send_options_free(copts)
	st := &sendState{progress: cfg.progress, batch: cfg.batchProgress, ctx: ctx}
	h := newHandle(st)
	defer deleteHandle(h)
	st.setCallbacks(copts, C.knsock_go_userdata(C.uintptr_t(h)))
	rs := &readState{ctx: ctx, r: r}
	rh := newHandle(rs)
	defer deleteHandle(rh)

	csize := C.uint64_t(C.KNSOCK_SIZE_UNKNOWN)
	if size >= 0 {
		csize = C.uint64_t(size)
	}
	chost, cname := C.CString(host), C.CString(name)
	defer C.free(unsafe.Pointer(chost))
	defer C.free(unsafe.Pointer(cname))
	var cerr *C.knsock_error
	code := C.knsock_send_stream(chost, C.uint16_t(port), cname,
		C.knsock_read_cb(C.knsock_go_read_tramp), C.knsock_go_userdata(C.uintptr_t(rh)), csize,
		copts, &cerr)
	if code == C.KNSOCK_RESULT_OK {
		return nil
	}
	e := takeError(code, cerr)
	if e.Code == CodeAbortedByCallback && rs.err != nil {
		e.Err = rs.err
		if ctxErr := ctx.Err(); ctxErr != nil && rs.err == ctxErr {
			e.Code, e.Message = CodeCancelled, "transfer cancelled"
		}
		return e
	}
	st.explain(e)
	return e
}
