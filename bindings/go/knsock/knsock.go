// Package knsock is the Go binding of knsock, reliable file transfer over TCP, wire-compatible
// with kn-sock. It wraps the library's C ABI (knsock.h) of an installed knsock, found through
// pkg-config: by default knsock-static.pc, so programs are self-contained (no libknsock.so and
// no LD_LIBRARY_PATH at run time); with the build tag knsock_shared, knsock.pc and the shared
// library. Point PKG_CONFIG_PATH at <prefix>/<libdir>/pkgconfig when knsock is not installed
// where pkg-config looks by default.
//
// Callbacks (progress, validators, handlers) run on library threads, possibly several at once;
// they must be safe for concurrent use and must not block forever. A panic in a callback is
// recovered: it aborts the transfer (progress) or refuses the file (validators) with an error
// carrying the panic value.
package knsock

/*
#cgo !knsock_shared pkg-config: knsock-static
#cgo knsock_shared pkg-config: knsock
#include <stdlib.h>
#include <knsock.h>
*/
import "C"

import (
	"net"
	"runtime/cgo"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Version is the version string of the linked library, e.g. "0.1.0".
func Version() string { return C.GoString(C.knsock_version()) }

// Code is a knsock_result: the outcome of a library call.
type Code int

// The result codes of the C ABI (knsock_result); their values never change.
const (
	CodeOK                Code = C.KNSOCK_RESULT_OK
	CodeInvalidArgument   Code = C.KNSOCK_RESULT_INVALID_ARGUMENT
	CodeNotFound          Code = C.KNSOCK_RESULT_NOT_FOUND
	CodeConnect           Code = C.KNSOCK_RESULT_CONNECT
	CodeTimeout           Code = C.KNSOCK_RESULT_TIMEOUT
	CodeRejected          Code = C.KNSOCK_RESULT_REJECTED
	CodeProtocol          Code = C.KNSOCK_RESULT_PROTOCOL
	CodeIntegrity         Code = C.KNSOCK_RESULT_INTEGRITY
	CodeNoSpace           Code = C.KNSOCK_RESULT_NO_SPACE
	CodeIO                Code = C.KNSOCK_RESULT_IO
	CodeCancelled         Code = C.KNSOCK_RESULT_CANCELLED
	CodeAbortedByCallback Code = C.KNSOCK_RESULT_ABORTED_BY_CALLBACK
	CodePanic             Code = C.KNSOCK_RESULT_PANIC
	CodeInProgress        Code = C.KNSOCK_RESULT_IN_PROGRESS
	// CodeAuth: the server failed verification (pin, CA, name), refused our token or
	// certificate (PeerCode 12), or one side speaks TLS and the other not (PeerCode 13).
	CodeAuth Code = C.KNSOCK_RESULT_AUTH
	// CodeStore: the receiver's object store failed: unreachable or slowing down (PeerCode 15;
	// retries are made), or it refused (PeerCode 16: access denied, no such bucket). A server
	// whose bucket cannot be opened fails to start with it.
	CodeStore Code = C.KNSOCK_RESULT_STORE
	// CodeBusy: the receiver is at its connection cap (PeerCode 17): retry later. Retried with
	// backoff when WithRetries allows.
	CodeBusy Code = C.KNSOCK_RESULT_BUSY
)

// String is the library's description of the code ("unknown result code" for unknown ones).
func (c Code) String() string { return C.GoString(C.knsock_result_str(C.int(c))) }

// Sentinels, one per failure code, for errors.Is: errors.Is(err, knsock.ErrRejected) is true
// for any *Error whose Code is CodeRejected.
var (
	ErrInvalidArgument   = &Error{Code: CodeInvalidArgument}
	ErrNotFound          = &Error{Code: CodeNotFound}
	ErrConnect           = &Error{Code: CodeConnect}
	ErrTimeout           = &Error{Code: CodeTimeout}
	ErrRejected          = &Error{Code: CodeRejected}
	ErrProtocol          = &Error{Code: CodeProtocol}
	ErrIntegrity         = &Error{Code: CodeIntegrity}
	ErrNoSpace           = &Error{Code: CodeNoSpace}
	ErrIO                = &Error{Code: CodeIO}
	ErrCancelled         = &Error{Code: CodeCancelled}
	ErrAbortedByCallback = &Error{Code: CodeAbortedByCallback}
	ErrPanic             = &Error{Code: CodePanic}
	ErrInProgress        = &Error{Code: CodeInProgress}
	ErrAuth              = &Error{Code: CodeAuth}
	ErrStore             = &Error{Code: CodeStore}
	ErrBusy              = &Error{Code: CodeBusy}
)

// Error is a failure reported by knsock.
type Error struct {
	Code    Code   // the result code
	Message string // the library's one-line message
	// PeerReason is the receiver's own reason when it refused the file (the text its validator
	// returned, "no space: …"); empty when it gave none.
	PeerReason string
	PeerCode   uint16 // the receiver's wire code for its refusal, or 0
	Peer       string // for server errors: the sender's "ip:port", when a connection was involved
	// Err is the cause on the Go side, when there is one: ctx.Err() for a cancelled send, the
	// progress callback's error (or recovered panic) for CodeAbortedByCallback.
	Err error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.String()
	}
	if e.PeerReason != "" && !strings.Contains(msg, e.PeerReason) {
		msg += " (receiver: " + e.PeerReason + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return "knsock: " + msg
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, knsock.ErrTimeout) matches every timeout.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

// Unwrap returns the Go-side cause (see Err), e.g. context.Canceled.
func (e *Error) Unwrap() error { return e.Err }

// errorFrom copies a library error object (which the caller still owns) into an *Error.
func errorFrom(code C.int, err *C.knsock_error) *Error {
	e := &Error{Code: Code(code)}
	if err != nil {
		e.Code = Code(C.knsock_error_code(err))
		e.Message = goString(C.knsock_error_message(err))
		e.PeerReason = goString(C.knsock_error_peer_reason(err))
		e.PeerCode = uint16(C.knsock_error_peer_code(err))
	}
	if e.Message == "" {
		e.Message = e.Code.String()
	}
	return e
}

// takeError converts an error object returned through a `knsock_error **` and frees it.
func takeError(code C.enum_knsock_result, err *C.knsock_error) *Error {
	defer C.knsock_error_free(err)
	return errorFrom(C.int(code), err)
}

// check turns the result of a call without error detail into an error.
func check(code C.enum_knsock_result, what string) error {
	if code == C.KNSOCK_RESULT_OK {
		return nil
	}
	return &Error{Code: Code(code), Message: what + ": " + Code(code).String()}
}

// firstFailure returns a function that checks the result of a setter call and records the
// first failure in *err; once *err is set, later results are ignored.
func firstFailure(err *error) func(code C.enum_knsock_result, what string) {
	return func(code C.enum_knsock_result, what string) {
		if *err == nil {
			*err = check(code, what)
		}
	}
}

// noNUL refuses a string with a NUL byte: C would see it cut short (naming another file, say).
func noNUL(s, what string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return &Error{Code: CodeInvalidArgument, Message: what + " contains a NUL byte"}
	}
	return nil
}

func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// liveHandles counts the cgo.Handles handed to C and not yet released (for the tests).
var liveHandles atomic.Int64

func newHandle(v any) cgo.Handle {
	liveHandles.Add(1)
	return cgo.NewHandle(v)
}

func deleteHandle(h cgo.Handle) {
	h.Delete()
	liveHandles.Add(-1)
}

// splitAddr splits a "host:port" address (an IPv6 host in brackets, as net.Dial takes it).
func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, &Error{Code: CodeInvalidArgument, Message: "address " + strconv.Quote(addr) + ": " + err.Error()}
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, &Error{Code: CodeInvalidArgument, Message: "port " + strconv.Quote(p) + " out of range"}
	}
	return host, port, nil
}

// cStrings is a Go slice of C strings: Go memory without Go pointers, which C only reads
// during a call.
type cStrings []*C.char

func newCStrings(ss []string) cStrings {
	out := make(cStrings, len(ss))
	for i, s := range ss {
		out[i] = C.CString(s)
	}
	return out
}

// array is the C array (NULL when there are none).
func (s cStrings) array() **C.char {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

func (s cStrings) free() {
	for _, p := range s {
		C.free(unsafe.Pointer(p))
	}
}
