package knsock

// TLS and authentication: the send options that verify the server and prove who the sender is,
// the server's security settings, and HashToken for tokens files. docs/security.md says how to
// deploy them.

/*
#include <stdlib.h>
#include <knsock.h>
*/
import "C"

import (
	"sort"
	"unsafe"
)

// tlsConfig is the TLS part of a send's options.
type tlsConfig struct {
	on                             *bool
	caFile, pin, serverName, token *string
	clientCert, clientKey          *string
}

// WithTLS turns TLS 1.3 on (or off). The server is always verified: against the pin
// (WithPin) when given, else the CA file (WithCAFile), else the system's trust store, and in
// the last two cases its certificate must name the host (or WithServerName). There is no way to
// turn verification off. A server that fails verification, or does not speak TLS, makes the
// send fail with ErrAuth before any file data leaves. Every other option of this file turns TLS
// on by itself; WithTLS(false) after them turns it off again and forgets them (a token then
// makes the send fail with ErrInvalidArgument: it is only ever sent inside TLS).
func WithTLS(on bool) SendOption { return func(c *sendConfig) { c.tls.on = &on } }

// WithCAFile trusts only the CA certificate(s) in this PEM file instead of the system's; turns
// TLS on. It cannot be combined with WithPin (ErrInvalidArgument).
func WithCAFile(path string) SendOption { return func(c *sendConfig) { c.tls.caFile = &path } }

// WithPin trusts exactly the server key with this pin, "sha256//BASE64" (curl's
// CURLOPT_PINNEDPUBLICKEY form, what Server.TLSPin and `kn-sock run-file-server` print); turns
// TLS on. Neither CA nor host name is checked then. A malformed pin is ErrInvalidArgument.
func WithPin(pin string) SendOption { return func(c *sendConfig) { c.tls.pin = &pin } }

// WithServerName sets the name the server's certificate must carry when it is not the host
// connected to; turns TLS on. Not used with a pin.
func WithServerName(name string) SendOption {
	return func(c *sendConfig) { c.tls.serverName = &name }
}

// WithClientCert shows this certificate chain and key (PEM files) to a server that
// authenticates senders by certificate; the identity is the certificate's subject common name.
// Turns TLS on.
func WithClientCert(certPath, keyPath string) SendOption {
	return func(c *sendConfig) { c.tls.clientCert, c.tls.clientKey = &certPath, &keyPath }
}

// WithToken proves who the sender is with a token, "NAME:SECRET", to a server that requires it
// (sent only inside TLS, after the server was verified); turns TLS on. A malformed token is
// ErrInvalidArgument; a server that refuses it makes the send fail with ErrAuth (PeerCode 12).
// Keep the secret off command lines, where other users can read it.
func WithToken(token string) SendOption { return func(c *sendConfig) { c.tls.token = &token } }

// setterError is the detail of a setter that failed on o.
func setterError(code C.enum_knsock_result, o *C.knsock_send_options, what string) *Error {
	e := errorFrom(C.int(code), C.knsock_send_options_last_error(o))
	e.Message = what + ": " + e.Message
	return e
}

// apply sets the TLS options on o (which the caller still owns).
func (t *tlsConfig) apply(o *C.knsock_send_options) error {
	if t.on != nil && *t.on {
		if code := C.knsock_send_options_set_tls(o, true); code != C.KNSOCK_RESULT_OK {
			return setterError(code, o, "TLS")
		}
	}
	type setter func(*C.knsock_send_options, *C.char) C.enum_knsock_result
	one := func(v *string, what string, f setter) error {
		if v == nil {
			return nil
		}
		if err := noNUL(*v, what); err != nil {
			return err
		}
		cs := C.CString(*v)
		defer C.free(unsafe.Pointer(cs))
		if code := f(o, cs); code != C.KNSOCK_RESULT_OK {
			return setterError(code, o, what)
		}
		return nil
	}
	steps := []struct {
		v    *string
		what string
		f    setter
	}{
		{t.caFile, "CA file", func(o *C.knsock_send_options, s *C.char) C.enum_knsock_result {
			return C.knsock_send_options_set_ca_file(o, s)
		}},
		{t.pin, "pin", func(o *C.knsock_send_options, s *C.char) C.enum_knsock_result {
			return C.knsock_send_options_set_pin(o, s)
		}},
		{t.serverName, "server name", func(o *C.knsock_send_options, s *C.char) C.enum_knsock_result {
			return C.knsock_send_options_set_server_name(o, s)
		}},
		{t.token, "token", func(o *C.knsock_send_options, s *C.char) C.enum_knsock_result {
			return C.knsock_send_options_set_token(o, s)
		}},
	}
	for _, s := range steps {
		if err := one(s.v, s.what, s.f); err != nil {
			return err
		}
	}
	if t.clientCert != nil {
		if err := noNUL(*t.clientCert+*t.clientKey, "client certificate"); err != nil {
			return err
		}
		cert, key := C.CString(*t.clientCert), C.CString(*t.clientKey)
		defer C.free(unsafe.Pointer(cert))
		defer C.free(unsafe.Pointer(key))
		if code := C.knsock_send_options_set_client_cert(o, cert, key); code != C.KNSOCK_RESULT_OK {
			return setterError(code, o, "client certificate")
		}
	}
	if t.on != nil && !*t.on {
		if code := C.knsock_send_options_set_tls(o, false); code != C.KNSOCK_RESULT_OK {
			return setterError(code, o, "TLS")
		}
	}
	return nil
}

// configSetter calls the setters of one C server config; each failure carries the setting's
// name and the config's detail.
type configSetter struct{ c *C.knsock_server_config }

// step is one setting applied to a C server config.
type step func() error

func (s configSetter) fail(code C.enum_knsock_result, what string) error {
	if code == C.KNSOCK_RESULT_OK {
		return nil
	}
	e := errorFrom(C.int(code), C.knsock_server_config_last_error(s.c))
	e.Message = what + ": " + e.Message
	return e
}

// cstr is s as a new C string (the caller frees it), refused when it holds a NUL byte.
func cstr(s, what string) (*C.char, error) {
	if err := noNUL(s, what); err != nil {
		return nil, err
	}
	return C.CString(s), nil
}

// str is the step that passes v to f, or nothing when v is empty.
func (s configSetter) str(v, what string, f func(*C.knsock_server_config, *C.char) C.enum_knsock_result) step {
	return func() error {
		if v == "" {
			return nil
		}
		cs, err := cstr(v, what)
		if err != nil {
			return err
		}
		defer C.free(unsafe.Pointer(cs))
		return s.fail(f(s.c, cs), what)
	}
}

// run applies the steps in order and stops at the first failure.
func run(steps []step) error {
	for _, st := range steps {
		if err := st(); err != nil {
			return err
		}
	}
	return nil
}

// applySecurity sets a ServerConfig's TLS, authentication and limit settings on c.
func (cfg *ServerConfig) applySecurity(c *C.knsock_server_config) error {
	set := configSetter{c}
	fail, path := set.fail, set.str
	steps := []step{
		func() error {
			if cfg.TLSCert == "" && cfg.TLSKey == "" {
				return nil
			}
			cert, err := cstr(cfg.TLSCert, "TLS certificate")
			if err != nil {
				return err
			}
			defer C.free(unsafe.Pointer(cert))
			key, err := cstr(cfg.TLSKey, "TLS key")
			if err != nil {
				return err
			}
			defer C.free(unsafe.Pointer(key))
			return fail(C.knsock_server_config_set_tls_cert(c, cert, key), "TLS certificate")
		},
		path(cfg.TLSSelfSigned, "TLS state directory", func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
			return C.knsock_server_config_set_tls_self_signed(c, s)
		}),
		path(cfg.TokensFile, "tokens file", func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
			return C.knsock_server_config_set_tokens_file(c, s)
		}),
		path(cfg.ClientCA, "client CA", func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
			return C.knsock_server_config_set_client_ca(c, s)
		}),
		func() error {
			return fail(C.knsock_server_config_set_confine_identities(c, C.bool(cfg.ConfineIdentities)), "confine identities")
		},
		func() error {
			ids := make([]string, 0, len(cfg.IdentityDirs))
			for id := range cfg.IdentityDirs {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				cid, err := cstr(id, "identity")
				if err != nil {
					return err
				}
				dir, err := cstr(cfg.IdentityDirs[id], "identity directory")
				if err != nil {
					C.free(unsafe.Pointer(cid))
					return err
				}
				code := C.knsock_server_config_set_identity_dir(c, cid, dir)
				C.free(unsafe.Pointer(cid))
				C.free(unsafe.Pointer(dir))
				if err := fail(code, "identity directory"); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			return fail(C.knsock_server_config_set_allow_plaintext(c, C.bool(cfg.AllowPlaintext)), "allow plaintext")
		},
		func() error {
			return fail(C.knsock_server_config_set_allow_legacy(c, C.bool(cfg.AllowLegacy)), "allow legacy")
		},
		func() error {
			return fail(C.knsock_server_config_set_allow_fetch(c, C.bool(cfg.AllowFetch)), "allow fetch")
		},
		func() error {
			code := C.knsock_server_config_set_allow_anonymous_fetch(c, C.bool(cfg.AllowAnonymousFetch))
			return fail(code, "allow anonymous fetch")
		},
		func() error {
			if cfg.HeaderTimeout == 0 {
				return nil
			}
			return fail(C.knsock_server_config_set_header_timeout_ms(c, millis(cfg.HeaderTimeout)), "header timeout")
		},
		func() error {
			if cfg.MaxDecoders == 0 {
				return nil
			}
			n := max(cfg.MaxDecoders, 0)
			return fail(C.knsock_server_config_set_max_decoders(c, C.uint32_t(min(n, 1<<31))), "max decoders")
		},
		func() error {
			if cfg.HashBudget == 0 {
				return nil
			}
			return fail(C.knsock_server_config_set_hash_budget(c, C.uint64_t(cfg.HashBudget)), "hash budget")
		},
		func() error {
			if cfg.ModeMask == 0 {
				return nil
			}
			return fail(C.knsock_server_config_set_mode_mask(c, C.uint32_t(cfg.ModeMask)), "mode mask")
		},
		func() error {
			return fail(C.knsock_server_config_set_raise_fd_limit(c, C.bool(!cfg.KeepFDLimit)), "raise fd limit")
		},
	}
	return run(steps)
}

// HashToken hashes a token's secret for a server's tokens file (ServerConfig.TokensFile): write
// the line "NAME:" + hash, then chmod 600 the file. The hash is salted PBKDF2 (a fresh salt
// each call) and takes tens of milliseconds on purpose. An empty secret is ErrInvalidArgument.
func HashToken(secret string) (string, error) {
	if err := noNUL(secret, "secret"); err != nil {
		return "", err
	}
	cs := C.CString(secret)
	defer C.free(unsafe.Pointer(cs))
	var out *C.char
	var cerr *C.knsock_error
	if code := C.knsock_hash_token(cs, &out, &cerr); code != C.KNSOCK_RESULT_OK {
		return "", takeError(code, cerr)
	}
	defer C.knsock_string_free(out)
	return C.GoString(out), nil
}
