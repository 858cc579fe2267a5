// knsock.hpp: the C++17 binding of knsock, header-only, over the C ABI in knsock.h.
//
// - Handles are RAII (std::unique_ptr with the library's free functions); Server and Transfer
//   are move-only, and no raw knsock_* handle reaches user code.
// - Callbacks are std::function; static trampolines bridge them to C. An exception thrown by a
//   user callback never unwinds through the library: the trampoline catches it and aborts the
//   transfer (progress), refuses the file with its message (validators), or is passed to the
//   error handler (received handler).
// - Errors are knsock::Error exceptions, or, for code built without exceptions, the try_*
//   functions return a knsock::Result. The throwing API is compiled only when exceptions are on.
#ifndef KNSOCK_HPP
#define KNSOCK_HPP

#include <knsock.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define KNSOCK_HPP_EXCEPTIONS 1
#include <exception>
#include <future>
#include <istream>
#include <stdexcept>
#else
#define KNSOCK_HPP_EXCEPTIONS 0
#endif

namespace knsock {

/// What a failed call returned: the result code, a message for people, and, when the receiver
/// refused the file, its reason and wire code.
struct [[nodiscard]] Result {
  knsock_result code = KNSOCK_RESULT_OK;
  std::string message;
  std::string peer_reason;
  uint16_t peer_code = 0;

  bool ok() const noexcept { return code == KNSOCK_RESULT_OK; }
  explicit operator bool() const noexcept { return ok(); }
};

namespace detail {

struct ErrorDeleter {
  void operator()(knsock_error *e) const noexcept { knsock_error_free(e); }
};
struct OptionsDeleter {
  void operator()(knsock_send_options *o) const noexcept { knsock_send_options_free(o); }
};
struct ConfigDeleter {
  void operator()(knsock_server_config *c) const noexcept { knsock_server_config_free(c); }
};
struct ServerDeleter {
  void operator()(knsock_server *s) const noexcept { knsock_server_free(s); }
};
struct TransferDeleter {
  void operator()(knsock_transfer *t) const noexcept { knsock_transfer_free(t); }
};

inline std::string str(const char *s) { return s ? std::string(s) : std::string(); }

/// Reads an error's detail (borrowed) into a Result.
inline Result result_of(knsock_result code, const knsock_error *e) {
  Result r;
  r.code = code;
  r.message = e ? str(knsock_error_message(e)) : str(knsock_result_str(code));
  r.peer_reason = str(knsock_error_peer_reason(e));
  r.peer_code = knsock_error_peer_code(e);
  return r;
}

/// C strings end at the first NUL: a std::string holding one would reach the library cut short
/// (naming another file, say), so it is refused instead.
inline Result check_c_string(const std::string &s, const char *what) {
  if (s.find('\0') == std::string::npos) return Result{};
  return Result{KNSOCK_RESULT_INVALID_ARGUMENT, std::string(what) + " contains a NUL byte", {}, 0};
}

/// Takes ownership of an error returned by a call and turns it into a Result.
inline Result take_result(knsock_result code, knsock_error *raw) {
  std::unique_ptr<knsock_error, ErrorDeleter> e(raw);
  return result_of(code, e.get());
}

}  // namespace detail

/// What a server does when a file of the same name exists.
enum class Overwrite : uint32_t {
  Replace = KNSOCK_OVERWRITE_REPLACE,
  Refuse = KNSOCK_OVERWRITE_REFUSE,
  Rename = KNSOCK_OVERWRITE_RENAME,
};

/// Called after each chunk with (file name, bytes sent, total); return false to abort.
using ProgressFn = std::function<bool(std::string_view name, uint64_t sent, uint64_t total)>;

/// Where a send_files() call stands: the current file and the whole list.
struct BatchProgress {
  std::string_view name;  // the current file, as the receiver names it (valid for the call)
  std::size_t index = 0;  // its place in the list, from 0
  std::size_t count = 0;  // files in the list
  uint64_t file_sent = 0, file_total = 0;
  uint64_t sent = 0, total = 0;  // the list's bytes dealt with so far, and its size
};

/// Called with the batch's progress; return false to abort.
using BatchProgressFn = std::function<bool(const BatchProgress &)>;

/// Called by send_files_multi() with a receiver's index and its batch's progress, on that
/// receiver's own thread: calls for different receivers come at the same time, so it must be
/// thread-safe. Return false to abort the transfer to that receiver only.
using MultiProgressFn = std::function<bool(std::size_t receiver, const BatchProgress &)>;

/// How to send; zero values mean the library's defaults.
struct SendOptions {
  bool show_progress = false;
  std::size_t chunk_size = 0;
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds connect_timeout{0};
  std::string remote_name;
  ProgressFn progress;
  unsigned retries = 0;
  std::chrono::milliseconds retry_delay{0};
  bool compress = false;
  // Skip files the receiver holds unchanged: same size and mtime (rsync's quick check, nothing
  // read), or with checksum the same content digest (like rsync -c).
  bool skip_unchanged = false;
  bool checksum = false;
  bool delta = true;  // send only the changed data of a file the receiver has an older copy of
  bool legacy = false;
  // For fetch_files() only (sends ignore them): keep the data of a file whose fetch was cut
  // short hidden beside its name, so a retry or a later fetch resumes it
  // (knsock_send_options_set_fetch_partial); and the permission bits a fetched file may keep,
  // at most 07777 (knsock_send_options_set_fetch_mode_mask).
  bool fetch_partial = false;
  uint32_t fetch_mode_mask = 0755;
  // For send_files():
  bool recursive = false;        // descend into directories
  bool follow_symlinks = false;  // follow symlinks while walking (default: skip them)
  std::vector<std::string> include, exclude;  // globs on relative names, e.g. "*.log"
  bool stop_on_error = false;    // stop offering files after the first failure
  BatchProgressFn batch_progress;
  // TLS and authentication (knsock_send_options_set_tls() and the setters after it). Setting
  // any of ca_file, pin, server_name, client_cert or token turns TLS on by itself. The server
  // is always verified: against `pin` when given, else `ca_file`, else the system's trust store
  // (and then its certificate must name the host, or `server_name`). There is no way to turn
  // verification off. A server that fails it, or refuses the token, gives KNSOCK_RESULT_AUTH.
  bool tls = false;
  std::string ca_file;      // trust only the CA(s) in this PEM file (not with a pin)
  std::string pin;          // "sha256//BASE64", as Server::tls_pin() gives it
  std::string server_name;  // the name the certificate must carry, when not the host
  std::string client_cert, client_key;  // PEM files, for servers that want a certificate
  std::string token;        // "NAME:SECRET", for servers that require a token
};

namespace detail {

/// The progress callbacks of one send and what they threw, shared with the trampolines.
struct ProgressState {
  ProgressFn fn;
  BatchProgressFn batch;
  MultiProgressFn multi;
  std::mutex mu;
  std::string thrown;  // non-empty when a callback threw

#if KNSOCK_HPP_EXCEPTIONS
  void record(const char *what) {
    std::lock_guard<std::mutex> lock(mu);
    thrown = std::string("progress callback threw: ") + what;
  }
#endif
};

/// Runs a progress callback (returning bool) for C: KNSOCK_CONTINUE to go on, 1 to abort; an
/// exception aborts too, and its message is kept for the error.
template <class F>
int guarded(ProgressState *st, F &&call) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
    return call() ? KNSOCK_CONTINUE : 1;
  } catch (const std::exception &e) {
    st->record(e.what());
  } catch (...) {
    st->record("an unknown exception");
  }
  return 1;
#else
  (void)st;
  return call() ? KNSOCK_CONTINUE : 1;
#endif
}

inline int progress_trampoline(void *userdata, const char *name, uint64_t sent,
                               uint64_t total) noexcept {
  auto *st = static_cast<ProgressState *>(userdata);
  return guarded(st, [&] { return st->fn(name ? name : "", sent, total); });
}

inline int batch_trampoline(void *userdata, const char *name, std::size_t index,
                            std::size_t count, uint64_t file_sent, uint64_t file_total,
                            uint64_t sent, uint64_t total) noexcept {
  auto *st = static_cast<ProgressState *>(userdata);
  const BatchProgress p{name ? name : "", index, count, file_sent, file_total, sent, total};
  return guarded(st, [&] { return st->batch(p); });
}

inline int multi_trampoline(void *userdata, std::size_t receiver, const char *name,
                            std::size_t index, std::size_t count, uint64_t file_sent,
                            uint64_t file_total, uint64_t sent, uint64_t total) noexcept {
  auto *st = static_cast<ProgressState *>(userdata);
  const BatchProgress p{name ? name : "", index, count, file_sent, file_total, sent, total};
  return guarded(st, [&] { return st->multi(receiver, p); });
}

using Options = std::unique_ptr<knsock_send_options, OptionsDeleter>;

/// Builds the C options; `progress` receives the callback state when there is a callback.
inline Result make_options(const SendOptions &o, ProgressState *progress, Options *out) {
  Result bad = check_c_string(o.remote_name, "remote name");
  for (const auto &g : o.include)
    if (bad) bad = check_c_string(g, "include glob");
  for (const auto &g : o.exclude)
    if (bad) bad = check_c_string(g, "exclude glob");
  const std::pair<const std::string *, const char *> strings[] = {
      {&o.ca_file, "CA file"},         {&o.pin, "pin"},
      {&o.server_name, "server name"}, {&o.client_cert, "client certificate"},
      {&o.client_key, "client key"},   {&o.token, "token"}};
  for (const auto &[value, what] : strings)
    if (bad) bad = check_c_string(*value, what);
  if (!bad) return bad;
  Options opts(knsock_send_options_new());
  if (!opts) return Result{KNSOCK_RESULT_PANIC, "out of memory", {}, 0};
  auto *p = opts.get();
  knsock_result rc = KNSOCK_RESULT_OK;
  std::string why;  // the first failing setter's detail
  auto step = [&rc, &why, p](knsock_result r) {
    if (rc != KNSOCK_RESULT_OK || r == KNSOCK_RESULT_OK) return;
    rc = r;
    why = str(knsock_error_message(knsock_send_options_last_error(p)));
  };
  step(knsock_send_options_set_show_progress(p, o.show_progress));
  if (o.chunk_size) step(knsock_send_options_set_chunk_size(p, o.chunk_size));
  if (o.timeout.count() > 0)
    step(knsock_send_options_set_timeout_ms(p, static_cast<uint64_t>(o.timeout.count())));
  if (o.connect_timeout.count() > 0)
    step(knsock_send_options_set_connect_timeout_ms(
        p, static_cast<uint64_t>(o.connect_timeout.count())));
  if (!o.remote_name.empty()) step(knsock_send_options_set_remote_name(p, o.remote_name.c_str()));
  step(knsock_send_options_set_retries(p, o.retries));
  if (o.retry_delay.count() > 0)
    step(knsock_send_options_set_retry_delay_ms(p, static_cast<uint64_t>(o.retry_delay.count())));
  step(knsock_send_options_set_compress(p, o.compress));
  step(knsock_send_options_set_skip_unchanged(p, o.skip_unchanged));
  step(knsock_send_options_set_checksum(p, o.checksum));
  step(knsock_send_options_set_delta(p, o.delta));
  step(knsock_send_options_set_legacy(p, o.legacy));
  step(knsock_send_options_set_fetch_partial(p, o.fetch_partial));
  step(knsock_send_options_set_fetch_mode_mask(p, o.fetch_mode_mask));
  if (o.progress && progress) {
    progress->fn = o.progress;
    step(knsock_send_options_set_progress_callback(p, progress_trampoline, progress));
  }
  if (o.batch_progress && progress) {
    progress->batch = o.batch_progress;
    step(knsock_send_options_set_batch_progress_callback(p, batch_trampoline, progress));
  }
  step(knsock_send_options_set_recursive(p, o.recursive));
  step(knsock_send_options_set_follow_symlinks(p, o.follow_symlinks));
  step(knsock_send_options_set_stop_on_error(p, o.stop_on_error));
  for (const auto &g : o.include) step(knsock_send_options_add_include(p, g.c_str()));
  for (const auto &g : o.exclude) step(knsock_send_options_add_exclude(p, g.c_str()));
  if (o.tls) step(knsock_send_options_set_tls(p, true));
  if (!o.ca_file.empty()) step(knsock_send_options_set_ca_file(p, o.ca_file.c_str()));
  if (!o.pin.empty()) step(knsock_send_options_set_pin(p, o.pin.c_str()));
  if (!o.server_name.empty()) step(knsock_send_options_set_server_name(p, o.server_name.c_str()));
  if (!o.client_cert.empty() || !o.client_key.empty())
    step(knsock_send_options_set_client_cert(p, o.client_cert.empty() ? nullptr : o.client_cert.c_str(),
                                             o.client_key.empty() ? nullptr : o.client_key.c_str()));
  if (!o.token.empty()) step(knsock_send_options_set_token(p, o.token.c_str()));
  if (rc != KNSOCK_RESULT_OK)
    return Result{rc, "invalid send option: " + (why.empty() ? str(knsock_result_str(rc)) : why),
                  {}, 0};
  *out = std::move(opts);
  return Result{};
}

/// Checks a send's arguments and builds its options.
inline Result check_send(const std::string &host, const std::string &path, const SendOptions &o,
                         ProgressState *progress, Options *out) {
  Result r = check_c_string(host, "host");
  if (r) r = check_c_string(path, "path");
  if (r) r = make_options(o, progress, out);
  return r;
}

/// A callback's exception replaces the library's "aborted by callback" message.
inline void blame_callback(Result &r, ProgressState &st) {
  std::lock_guard<std::mutex> lock(st.mu);
  if (!st.thrown.empty() && r.code == KNSOCK_RESULT_ABORTED_BY_CALLBACK) r.message = st.thrown;
}

}  // namespace detail

/// Sends a file and returns once the receiver has it verified, durable and in place; never
/// throws. Callbacks run on the calling thread.
inline Result try_send_file(const std::string &host, uint16_t port, const std::string &path,
                            const SendOptions &options = {}) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    detail::ProgressState progress;
    detail::Options opts;
    Result r = detail::check_send(host, path, options, &progress, &opts);
    if (!r) return r;
    knsock_error *err = nullptr;
    knsock_result rc = knsock_send_file(host.c_str(), port, path.c_str(), opts.get(), &err);
    if (rc == KNSOCK_RESULT_OK) return Result{};
    r = detail::take_result(rc, err);
    detail::blame_callback(r, progress);
    return r;
#if KNSOCK_HPP_EXCEPTIONS
  } catch (const std::exception &e) {  // std::bad_alloc copying strings
    return Result{KNSOCK_RESULT_PANIC, e.what(), {}, 0};
  }
#endif
}

#if KNSOCK_HPP_EXCEPTIONS
/// A failed knsock call.
class Error : public std::runtime_error {
 public:
  explicit Error(Result r) : std::runtime_error(r.message), result_(std::move(r)) {}
  knsock_result code() const noexcept { return result_.code; }
  /// The receiver's own reason when it refused the file; empty otherwise.
  const std::string &peer_reason() const noexcept { return result_.peer_reason; }
  uint16_t peer_code() const noexcept { return result_.peer_code; }
  const Result &result() const noexcept { return result_; }

 private:
  Result result_;
};

/// Sends a file; throws knsock::Error on failure.
inline void send_file(const std::string &host, uint16_t port, const std::string &path,
                      const SendOptions &options = {}) {
  Result r = try_send_file(host, port, path, options);
  if (!r) throw Error(std::move(r));
}
#endif

/// One file's outcome in send_files().
struct FileOutcome {
  std::string path;  // local path
  std::string name;  // name on the receiver, e.g. "logs/app.log"
  uint64_t bytes = 0;
  bool skipped = false;  // the receiver already held it unchanged
  uint64_t bytes_sent = 0;    // content bytes on the wire (compressed, delta frames)
  uint64_t bytes_reused = 0;  // bytes the receiver took from its older copy (delta, resume)
  Result result;              // ok() when delivered (or skipped)
};

namespace detail {

/// Each file's outcome in a batch report (which keeps its ownership).
inline std::vector<FileOutcome> file_outcomes(const knsock_batch_report *raw,
                                              ProgressState &progress) {
  std::vector<FileOutcome> out;
  for (std::size_t i = 0, n = knsock_batch_report_count(raw); i < n; ++i) {
    FileOutcome f;
    f.path = str(knsock_batch_report_path(raw, i));
    f.name = str(knsock_batch_report_name(raw, i));
    f.bytes = knsock_batch_report_bytes(raw, i);
    f.skipped = knsock_batch_report_skipped(raw, i);
    f.bytes_sent = knsock_batch_report_bytes_sent(raw, i);
    f.bytes_reused = knsock_batch_report_bytes_reused(raw, i);
    knsock_result code = knsock_batch_report_result(raw, i);
    if (code != KNSOCK_RESULT_OK) {
      f.result = result_of(code, knsock_batch_report_error(raw, i));
      blame_callback(f.result, progress);
    }
    out.push_back(std::move(f));
  }
  return out;
}

/// What a call that fills a batch report returned: its failure, or (the report freed after)
/// each file's outcome into `*outcomes` when not null.
inline Result batch_result(knsock_result rc, knsock_batch_report *raw, knsock_error *err,
                           ProgressState &progress, std::vector<FileOutcome> *outcomes) {
  if (rc != KNSOCK_RESULT_OK) {
    Result r = take_result(rc, err);
    blame_callback(r, progress);
    return r;
  }
  std::unique_ptr<knsock_batch_report, void (*)(knsock_batch_report *)> report(
      raw, knsock_batch_report_free);
  std::vector<FileOutcome> out = file_outcomes(raw, progress);
  if (outcomes) *outcomes = std::move(out);
  return Result{};
}

/// The paths as C strings, checked for NUL bytes (`*r` keeps the first failure).
inline std::vector<const char *> c_paths(const std::vector<std::string> &paths, Result *r) {
  std::vector<const char *> cpaths;
  for (const auto &p : paths) {
    if (*r) *r = check_c_string(p, "path");
    cpaths.push_back(p.c_str());
  }
  return cpaths;
}

}  // namespace detail

/// Sends files and directories (with options.recursive) over one connection, pipelined; never
/// throws. Returns ok when the batch ran, even if some files failed: `*outcomes` then has one
/// entry per file, in order. Fails (and leaves `*outcomes` empty) when nothing could be
/// attempted: a bad path, a walk error, no connection.
inline Result try_send_files(const std::string &host, uint16_t port,
                             const std::vector<std::string> &paths, const SendOptions &options,
                             std::vector<FileOutcome> *outcomes) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    if (outcomes) outcomes->clear();
    detail::ProgressState progress;
    detail::Options opts;
    Result r = detail::check_send(host, std::string(), options, &progress, &opts);
    std::vector<const char *> cpaths = detail::c_paths(paths, &r);
    if (!r) return r;
    knsock_batch_report *raw = nullptr;
    knsock_error *err = nullptr;
    knsock_result rc = knsock_send_files(host.c_str(), port, cpaths.data(), cpaths.size(),
                                         opts.get(), &raw, &err);
    return detail::batch_result(rc, raw, err, progress, outcomes);
#if KNSOCK_HPP_EXCEPTIONS
  } catch (const std::exception &e) {
    return Result{KNSOCK_RESULT_PANIC, e.what(), {}, 0};
  }
#endif
}

#if KNSOCK_HPP_EXCEPTIONS
/// Sends files and directories over one connection; throws knsock::Error only when nothing
/// could be attempted. Per-file failures are in the outcomes.
[[nodiscard]] inline std::vector<FileOutcome> send_files(const std::string &host, uint16_t port,
                                           const std::vector<std::string> &paths,
                                           const SendOptions &options = {}) {
  std::vector<FileOutcome> out;
  Result r = try_send_files(host, port, paths, options, &out);
  if (!r) throw Error(std::move(r));
  return out;
}
#endif

namespace detail {

/// The C callbacks of a fetch: progress through `st` (options.progress), nothing else (the
/// outcomes come in the report).
inline knsock_fetch_callbacks fetch_callbacks(const SendOptions &o, ProgressState *st) {
  knsock_fetch_callbacks cbs{};
  if (o.progress && st) {
    st->fn = o.progress;
    cbs.progress = progress_trampoline;
    cbs.userdata = st;
  }
  return cbs;
}

/// Checks a fetch's arguments and builds its options and the names as C strings.
inline Result check_fetch(const std::string &host, const std::vector<std::string> &remotes,
                          const std::string &dest, const SendOptions &o, ProgressState *progress,
                          Options *opts, std::vector<const char *> *cnames) {
  Result r = check_c_string(dest, "destination");
  for (const auto &n : remotes) {
    if (r) r = check_c_string(n, "remote name");
    cnames->push_back(n.c_str());
  }
  if (r) r = check_send(host, std::string(), o, progress, opts);
  return r;
}

}  // namespace detail

/// Fetches `remotes` (files, or directories with options.recursive; names as they were sent)
/// from a receiver that serves fetches into the directory `dest` (created if missing); never
/// throws. Each file is verified, given its mtime and mode (within 0755), made durable and
/// renamed into place; the receiver's names are checked so none lands outside `dest`. From
/// `options` it takes the timeouts, retries, TLS and token, recursion, include and exclude,
/// skip_unchanged and checksum, and `progress` (name, bytes received, size). Returns ok when the
/// receiver listed what was asked, even if some files failed: `*outcomes` then has one entry per
/// listed file (path: where it is now; skipped: it was already here unchanged), then one per
/// requested name that gave nothing (an empty path and its error). Fails, leaving `*outcomes`
/// empty, when nothing could be listed (no connection, authentication, a receiver that does not
/// serve fetches or refuses this client).
inline Result try_fetch_files(const std::string &host, uint16_t port,
                              const std::vector<std::string> &remotes, const std::string &dest,
                              const SendOptions &options,
                              std::vector<FileOutcome> *outcomes) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    if (outcomes) outcomes->clear();
    detail::ProgressState progress;
    detail::Options opts;
    std::vector<const char *> cnames;
    Result r = detail::check_fetch(host, remotes, dest, options, &progress, &opts, &cnames);
    if (!r) return r;
    knsock_fetch_callbacks cbs = detail::fetch_callbacks(options, &progress);
    knsock_batch_report *raw = nullptr;
    knsock_error *err = nullptr;
    knsock_result rc = knsock_fetch_files(host.c_str(), port, cnames.data(), cnames.size(),
                                          dest.c_str(), opts.get(), &cbs, &raw, &err);
    return detail::batch_result(rc, raw, err, progress, outcomes);
#if KNSOCK_HPP_EXCEPTIONS
  } catch (const std::exception &e) {
    return Result{KNSOCK_RESULT_PANIC, e.what(), {}, 0};
  }
#endif
}

/// Fetches one file (or directory, with options.recursive) into `dest`; ok only when every
/// listed file was fetched or found unchanged; never throws.
inline Result try_fetch_file(const std::string &host, uint16_t port, const std::string &remote,
                             const std::string &dest, const SendOptions &options = {}) noexcept {
  std::vector<FileOutcome> out;
  Result r = try_fetch_files(host, port, {remote}, dest, options, &out);
  for (auto &f : out)
    if (r && !f.result) r = std::move(f.result);
  return r;
}

#if KNSOCK_HPP_EXCEPTIONS
/// try_fetch_files(); throws knsock::Error only when nothing could be listed.
[[nodiscard]] inline std::vector<FileOutcome> fetch_files(const std::string &host, uint16_t port,
                                                          const std::vector<std::string> &remotes,
                                                          const std::string &dest,
                                                          const SendOptions &options = {}) {
  std::vector<FileOutcome> out;
  Result r = try_fetch_files(host, port, remotes, dest, options, &out);
  if (!r) throw Error(std::move(r));
  return out;
}

/// try_fetch_file(); throws knsock::Error on any failure.
inline void fetch_file(const std::string &host, uint16_t port, const std::string &remote,
                       const std::string &dest, const SendOptions &options = {}) {
  Result r = try_fetch_file(host, port, remote, dest, options);
  if (!r) throw Error(std::move(r));
}
#endif

/// One receiver of send_files_multi().
struct Receiver {
  std::string host;
  uint16_t port = 0;
};

/// What happened at one receiver in send_files_multi().
struct ReceiverOutcome {
  Receiver receiver;
  Result result;                   // ok() when it was reached; else why not (no files then)
  std::vector<FileOutcome> files;  // each file's outcome at this receiver, in order
};

/// Sends the same files and directories to several receivers at once, one connection and one
/// thread per receiver, each as send_files() would (knsock_send_files_multi(): each file is read
/// once while the receivers keep up, and a slow one never holds up the others); never throws.
/// `progress` (may be empty) runs on the receivers' threads; options.progress and
/// options.batch_progress are not called. Returns ok when the receivers were tried, even if
/// some could not be reached or failed files: `*outcomes` then has one entry per receiver, in
/// order. Fails (and leaves `*outcomes` empty) for bad arguments: no receivers, an empty host,
/// a bad path, a walk error.
inline Result try_send_files_multi(const std::vector<Receiver> &receivers,
                                   const std::vector<std::string> &paths,
                                   const SendOptions &options, MultiProgressFn progress,
                                   std::vector<ReceiverOutcome> *outcomes) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    if (outcomes) outcomes->clear();
    detail::ProgressState state;
    state.multi = std::move(progress);
    detail::Options opts;
    Result r = detail::make_options(options, nullptr, &opts);
    std::vector<knsock_receiver> crecv;
    for (const auto &rc : receivers) {
      if (r) r = detail::check_c_string(rc.host, "host");
      crecv.push_back(knsock_receiver{rc.host.c_str(), rc.port});
    }
    std::vector<const char *> cpaths = detail::c_paths(paths, &r);
    if (!r) return r;
    knsock_multi_report *raw = nullptr;
    knsock_error *err = nullptr;
    knsock_result rc = knsock_send_files_multi(
        crecv.data(), crecv.size(), cpaths.data(), cpaths.size(), opts.get(),
        state.multi ? detail::multi_trampoline : nullptr, &state, &raw, &err);
    if (rc != KNSOCK_RESULT_OK) return detail::take_result(rc, err);
    std::unique_ptr<knsock_multi_report, void (*)(knsock_multi_report *)> report(
        raw, knsock_multi_report_free);
    std::vector<ReceiverOutcome> out;
    for (std::size_t i = 0; i < receivers.size(); ++i) {
      ReceiverOutcome o;
      o.receiver = receivers[i];
      knsock_result code = knsock_multi_report_result(raw, i);
      if (code != KNSOCK_RESULT_OK)
        o.result = detail::result_of(code, knsock_multi_report_error(raw, i));
      else
        o.files = detail::file_outcomes(knsock_multi_report_batch(raw, i), state);
      out.push_back(std::move(o));
    }
    if (outcomes) *outcomes = std::move(out);
    return Result{};
#if KNSOCK_HPP_EXCEPTIONS
  } catch (const std::exception &e) {
    return Result{KNSOCK_RESULT_PANIC, e.what(), {}, 0};
  }
#endif
}

#if KNSOCK_HPP_EXCEPTIONS
/// send_files_multi(); throws knsock::Error only for bad arguments. Unreachable receivers and
/// per-file failures are in the outcomes.
[[nodiscard]] inline std::vector<ReceiverOutcome> send_files_multi(
    const std::vector<Receiver> &receivers, const std::vector<std::string> &paths,
    const SendOptions &options = {}, MultiProgressFn progress = {}) {
  std::vector<ReceiverOutcome> out;
  Result r = try_send_files_multi(receivers, paths, options, std::move(progress), &out);
  if (!r) throw Error(std::move(r));
  return out;
}
#endif

/// Hashes a token's secret for a server's tokens file: `*hash` receives the HASH of a
/// `NAME:HASH` line (salted PBKDF2, different at each call); never throws. Then chmod 600 the
/// file (ServerConfig::tokens_file).
inline Result try_hash_token(const std::string &secret, std::string *hash) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    Result r = detail::check_c_string(secret, "secret");
    if (!r) return r;
    char *raw = nullptr;
    knsock_error *err = nullptr;
    knsock_result rc = knsock_hash_token(secret.c_str(), &raw, &err);
    if (rc != KNSOCK_RESULT_OK) return detail::take_result(rc, err);
    std::unique_ptr<char, void (*)(char *)> owned(raw, knsock_string_free);
    if (hash) *hash = owned.get();
    return Result{};
#if KNSOCK_HPP_EXCEPTIONS
  } catch (const std::exception &e) {
    return Result{KNSOCK_RESULT_PANIC, e.what(), {}, 0};
  }
#endif
}

#if KNSOCK_HPP_EXCEPTIONS
/// Hashes a token's secret for a tokens file; throws knsock::Error on failure.
inline std::string hash_token(const std::string &secret) {
  std::string hash;
  Result r = try_hash_token(secret, &hash);
  if (!r) throw Error(std::move(r));
  return hash;
}
#endif

/// A file as the server sees it (a copy, valid beyond the callback).
struct FileInfo {
  std::string name;  // in on_received: the name it was stored under
  uint64_t size = 0;
  int64_t mtime = 0;
  uint32_t mode = 0;
  std::string peer;
  std::string path;  // empty before the data; the verified temp file; the saved file
  std::string identity;  // who the sender proved to be (token name, certificate CN); empty: anonymous

  static FileInfo from(const knsock_file_info *i) {
    FileInfo f;
    f.name = detail::str(knsock_file_info_name(i));
    f.size = knsock_file_info_size(i);
    f.mtime = knsock_file_info_mtime(i);
    f.mode = knsock_file_info_mode(i);
    f.peer = detail::str(knsock_file_info_peer(i));
    f.path = detail::str(knsock_file_info_path(i));
    f.identity = detail::str(knsock_file_info_identity(i));
    return f;
  }
};

/// Returns a reason to refuse the file, or std::nullopt to accept it.
using ValidatorFn = std::function<std::optional<std::string>(const FileInfo &)>;

/// The embedding program's own storage (knsock_server_config_set_store()): received files go
/// into it, only once verified, instead of ServerConfig::dir (which then only spools content).
/// Its methods run on the server's threads, several files at once: they must be thread-safe.
/// One file's calls come in order from one thread: begin, write..., commit; abort instead of
/// (or after a failed) commit. An exception (or false from a bool-returning method, without
/// exceptions) fails the file: its sender is told the exception's message (code 15), nothing
/// is committed, and the server goes on. Skip-unchanged works through stat(); delta does not
/// apply; resume keeps partial data in the spool.
class Store {
 public:
  /// An object as the store sees it.
  struct Object {
    uint64_t size = 0;
    int64_t mtime_secs = 0;
    uint32_t mtime_nanos = 0;
    uint32_t mode = 0;
    std::optional<std::array<uint8_t, 16>> digest;  // XXH3-128, big-endian; begin always has it
  };
  virtual ~Store() = default;
  /// Starts the object `name`; returns anything the store knows it by in the other calls.
  virtual void *begin(const std::string &name, const Object &object) = 0;
  virtual void write(void *handle, const uint8_t *bytes, std::size_t length) = 0;
  /// Makes the object appear whole and durable.
  virtual void commit(void *handle) = 0;
  /// Drops what was begun; nothing of it may appear. Must not throw.
  virtual void abort(void *handle) noexcept = 0;
  /// The object stored under `name`, if any (for skip-unchanged and the "refuse" policy).
  virtual std::optional<Object> stat(const std::string &name) {
    (void)name;
    return std::nullopt;
  }
};

namespace detail {

inline knsock_store_object to_c(const Store::Object &o) {
  knsock_store_object c{};
  c.size = o.size;
  c.mtime_secs = o.mtime_secs;
  c.mtime_nanos = o.mtime_nanos;
  c.mode = o.mode;
  c.has_digest = o.digest.has_value();
  if (o.digest)
    for (std::size_t i = 0; i < 16; i++) c.digest[i] = (*o.digest)[i];
  return c;
}

inline Store::Object from_c(const knsock_store_object *c) {
  Store::Object o;
  o.size = c->size;
  o.mtime_secs = c->mtime_secs;
  o.mtime_nanos = c->mtime_nanos;
  o.mode = c->mode;
  if (c->has_digest) {
    std::array<uint8_t, 16> d{};
    for (std::size_t i = 0; i < 16; i++) d[i] = c->digest[i];
    o.digest = d;
  }
  return o;
}

/// Runs a store method for C: KNSOCK_STORE_OK, or KNSOCK_STORE_FAILED with the exception's
/// message as the reason.
template <class F>
int store_call(char *reason, F &&call) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
    call();
    return KNSOCK_STORE_OK;
  } catch (const std::exception &e) {
    std::snprintf(reason, KNSOCK_REASON_MAX, "%s", e.what());
  } catch (...) {
    std::snprintf(reason, KNSOCK_REASON_MAX, "the store threw an unknown exception");
  }
  return KNSOCK_STORE_FAILED;
#else
  (void)reason;
  call();
  return KNSOCK_STORE_OK;
#endif
}

inline Store &store_of(void *ud) { return **static_cast<std::shared_ptr<Store> *>(ud); }

inline int store_begin(void *ud, const char *name, const knsock_store_object *o, void **handle,
                       char *reason) noexcept {
  return store_call(reason, [&] { *handle = store_of(ud).begin(str(name), from_c(o)); });
}

inline int store_write(void *ud, void *handle, const uint8_t *bytes, std::size_t len,
                       char *reason) noexcept {
  return store_call(reason, [&] { store_of(ud).write(handle, bytes, len); });
}

inline int store_commit(void *ud, void *handle, char *reason) noexcept {
  return store_call(reason, [&] { store_of(ud).commit(handle); });
}

inline void store_abort(void *ud, void *handle) noexcept { store_of(ud).abort(handle); }

inline int store_stat(void *ud, const char *name, knsock_store_object *out, char *reason) noexcept {
  std::optional<Store::Object> found;
  int rc = store_call(reason, [&] { found = store_of(ud).stat(str(name)); });
  if (rc != KNSOCK_STORE_OK) return rc;
  if (!found) return KNSOCK_STORE_NOT_FOUND;
  *out = to_c(*found);
  return KNSOCK_STORE_OK;
}

inline void store_free(void *ud) noexcept { delete static_cast<std::shared_ptr<Store> *>(ud); }

}  // namespace detail

/// A server's settings; zero values mean the library's defaults. Callbacks run on worker
/// threads, possibly several at once: they must be thread-safe.
struct ServerConfig {
  std::string dir;
  std::string host = "0.0.0.0";
  uint16_t port = 0;
  unsigned max_connections = 0;
  std::chrono::milliseconds idle_timeout{0};
  uint64_t max_file_size = 0;
  uint64_t reserve_bytes = 0;
  Overwrite overwrite = Overwrite::Replace;
  std::chrono::milliseconds resume_ttl{0};
  bool accept_compression = true;
  ValidatorFn validate_before;
  ValidatorFn validate_after;
  std::function<void(const FileInfo &)> on_received;
  std::function<void(knsock_result code, const std::string &message, const std::string &peer)>
      on_error;
  // Receiver limits; zero or empty means the library's default.
  std::chrono::milliseconds header_timeout{0};  // a whole frame must arrive within it (10 s)
  std::optional<uint32_t> max_decoders;         // connections decoding zstd at once (16)
  std::optional<uint64_t> hash_budget;          // bytes hashed per connection for SKIP (64 GiB)
  std::optional<uint32_t> mode_mask;            // permission bits a file may keep (0755)
  bool raise_fd_limit = true;                   // raise the soft descriptor limit at start
  // TLS and authentication (docs/security.md). Files are read when the server starts; a bad
  // combination fails the start with the reason.
  std::string tls_cert, tls_key;  // serve TLS with this certificate chain and key (PEM)
  std::string tls_self_signed;    // or: a self-signed identity kept in this directory
  std::string tokens_file;        // require a token (NAME:HASH lines, mode 0600)
  std::string client_ca;          // accept client certificates issued by this CA
  bool confine_identities = false;  // each identity writes beneath <dir>/<identity>
  std::vector<std::pair<std::string, std::string>> identity_dirs;  // identity -> subdirectory
  bool allow_plaintext = false;  // UNSAFE: also plain knsock senders on a TLS server
  bool allow_legacy = false;     // UNSAFE: also kn-sock 0.3 uploads on a TLS server
  // Serve fetches (fetch_files()): each authenticated identity gets back what it may write.
  bool allow_fetch = false;
  bool allow_anonymous_fetch = false;  // UNSAFE: fetches for clients that proved no identity
  // An S3-compatible bucket to store files in instead of `dir`, which then only spools their
  // content; FileInfo::path in on_received is then "s3://BUCKET/KEY". The bucket is opened
  // (one HEAD request) when the server starts: an unreachable store or refused keys fail the
  // start with KNSOCK_RESULT_STORE. The others need `s3`; empty ones come from the standard
  // AWS_* environment at start. Overwrite::Rename is refused with a bucket.
  std::string s3;                 // "s3://BUCKET" or "s3://BUCKET/PREFIX"
  std::string s3_endpoint;        // "http(s)://host[:port]"; default: AWS's
  bool s3_path_style = false;     // with s3_endpoint: ENDPOINT/BUCKET/KEY (MinIO, SeaweedFS)
  std::string s3_region;          // signed for; default "us-east-1"
  std::string s3_access_key, s3_secret_key, s3_session_token;  // the token is optional
  std::string s3_ca_file;         // trust these CAs (PEM) for an https endpoint
  // The embedding program's own store, instead of `dir` (which then spools) and of `s3`.
  std::shared_ptr<Store> store;
};

namespace detail {

/// The callbacks of one server, kept alive by the library until its finalizer runs.
struct ServerCallbacks {
  ValidatorFn before, after;
  std::function<void(const FileInfo &)> received;
  std::function<void(knsock_result, const std::string &, const std::string &)> error;
};

inline int validate(const ValidatorFn &fn, const knsock_file_info *info, char *reason,
                    std::size_t len) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    std::optional<std::string> why = fn(FileInfo::from(info));
    if (!why) return 0;
    std::snprintf(reason, len, "%s", why->c_str());
    return 1;
#if KNSOCK_HPP_EXCEPTIONS
  } catch (const std::exception &e) {
    std::snprintf(reason, len, "validator threw: %s", e.what());
  } catch (...) {
    std::snprintf(reason, len, "validator threw an unknown exception");
  }
  return 1;
#endif
}

inline int before_trampoline(void *ud, const knsock_file_info *info, char *reason,
                             std::size_t len) noexcept {
  return validate(static_cast<ServerCallbacks *>(ud)->before, info, reason, len);
}

inline int after_trampoline(void *ud, const knsock_file_info *info, char *reason,
                            std::size_t len) noexcept {
  return validate(static_cast<ServerCallbacks *>(ud)->after, info, reason, len);
}

inline void received_trampoline(void *ud, const knsock_file_info *info) noexcept {
  auto *cbs = static_cast<ServerCallbacks *>(ud);
#if KNSOCK_HPP_EXCEPTIONS
  // A handler's exception must not cross into C. The file is stored and its sender told; the
  // error handler, if any, hears of the exception.
  std::string what;
  try {
    cbs->received(FileInfo::from(info));
    return;
  } catch (const std::exception &e) {
    what = e.what();
  } catch (...) {
    what = "an unknown exception";
  }
  if (!cbs->error) return;
  try {
    cbs->error(KNSOCK_RESULT_ABORTED_BY_CALLBACK, "received handler threw: " + what,
               str(knsock_file_info_peer(info)));
  } catch (...) {
  }
#else
  cbs->received(FileInfo::from(info));
#endif
}

inline void error_trampoline(void *ud, knsock_result code, const char *message,
                             const char *peer) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    static_cast<ServerCallbacks *>(ud)->error(code, str(message), str(peer));
#if KNSOCK_HPP_EXCEPTIONS
  } catch (...) {
  }
#endif
}

inline void delete_callbacks(void *ud) noexcept { delete static_cast<ServerCallbacks *>(ud); }

}  // namespace detail

/// A server's statistics: counters since it started and the use of its bounded resources now
/// (knsock_stats_values in the C header; `files_rejected[code]` and `files_failed[code]` by
/// refusal code, KNSOCK_STATS_CODES slots).
using ServerStats = knsock_stats_values;

/// A running server (kn-sock's start_file_server_async). Move-only; destroying it stops it
/// (transfers in flight are aborted cleanly) and frees it.
class [[nodiscard]] Server {
 public:
  Server() = default;

  /// Starts a server; on failure `*result` tells why and the server is empty. Never throws.
  static Server start(const ServerConfig &cfg, Result *result) noexcept {
    Server s;
    Result r = s.open(cfg);
    if (result) *result = std::move(r);
    return s;
  }

#if KNSOCK_HPP_EXCEPTIONS
  /// Starts a server; throws knsock::Error on failure.
  explicit Server(const ServerConfig &cfg) {
    Result r = open(cfg);
    if (!r) throw Error(std::move(r));
  }
#endif

  Server(Server &&) noexcept = default;
  Server &operator=(Server &&other) noexcept {
    if (this != &other) {
      stop();
      handle_ = std::move(other.handle_);
    }
    return *this;
  }
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;
  ~Server() { stop(); }

  explicit operator bool() const noexcept { return handle_ != nullptr; }

  /// The port it listens on (the real one when 0 was asked for); 0 when empty.
  uint16_t port() const noexcept { return knsock_server_port(handle_.get()); }

  /// Stops it and waits for its workers; safe from its own callbacks (then it only asks).
  void stop() noexcept {
    if (handle_) knsock_server_stop(handle_.get());
  }

  /// What it has done and holds now (knsock_server_stats); all zero when empty. Any thread,
  /// also from its own callbacks.
  ServerStats stats() const noexcept {
    knsock_stats s{};
    s.size = sizeof s;
    if (!handle_ || knsock_server_stats(handle_.get(), &s) != KNSOCK_RESULT_OK) return ServerStats{};
    return s.values;
  }

  /// The pin of its TLS key ("sha256//BASE64"), for senders' SendOptions::pin; empty without TLS.
  std::string tls_pin() const { return detail::str(knsock_server_tls_pin(handle_.get())); }

  /// Blocks until the server stops (kn-sock's blocking start_file_server).
  Result wait() noexcept {
    knsock_error *err = nullptr;
    knsock_result rc = knsock_server_wait(handle_.get(), &err);
    return rc == KNSOCK_RESULT_OK ? Result{} : detail::take_result(rc, err);
  }

 private:
  Result open(const ServerConfig &cfg) noexcept {
    Result bad = detail::check_c_string(cfg.dir, "directory");
    if (bad) bad = detail::check_c_string(cfg.host, "host");
    for (const std::string *s : {&cfg.tls_cert, &cfg.tls_key, &cfg.tls_self_signed,
                                 &cfg.tokens_file, &cfg.client_ca})
      if (bad) bad = detail::check_c_string(*s, "TLS setting");
    for (const std::string *s : {&cfg.s3, &cfg.s3_endpoint, &cfg.s3_region, &cfg.s3_access_key,
                                 &cfg.s3_secret_key, &cfg.s3_session_token, &cfg.s3_ca_file})
      if (bad) bad = detail::check_c_string(*s, "S3 setting");
    for (const auto &[id, sub] : cfg.identity_dirs) {
      if (bad) bad = detail::check_c_string(id, "identity");
      if (bad) bad = detail::check_c_string(sub, "identity directory");
    }
    if (!bad) return bad;
    std::unique_ptr<knsock_server_config, detail::ConfigDeleter> c(knsock_server_config_new());
    if (!c) return Result{KNSOCK_RESULT_PANIC, "out of memory", {}, 0};
    auto *p = c.get();
    knsock_result rc = KNSOCK_RESULT_OK;
    std::string why;  // the first failing setter's detail
    auto step = [&rc, &why, p](knsock_result r) {
      if (rc != KNSOCK_RESULT_OK || r == KNSOCK_RESULT_OK) return;
      rc = r;
      why = detail::str(knsock_error_message(knsock_server_config_last_error(p)));
    };
    step(knsock_server_config_set_directory(p, cfg.dir.c_str()));
    step(knsock_server_config_set_host(p, cfg.host.c_str()));
    step(knsock_server_config_set_port(p, cfg.port));
    if (cfg.max_connections) step(knsock_server_config_set_max_connections(p, cfg.max_connections));
    if (cfg.idle_timeout.count() > 0)
      step(knsock_server_config_set_idle_timeout_ms(
          p, static_cast<uint64_t>(cfg.idle_timeout.count())));
    step(knsock_server_config_set_max_file_size(p, cfg.max_file_size));
    step(knsock_server_config_set_reserve_bytes(p, cfg.reserve_bytes));
    step(knsock_server_config_set_overwrite(p, static_cast<uint32_t>(cfg.overwrite)));
    step(knsock_server_config_set_resume_ttl_ms(p, static_cast<uint64_t>(cfg.resume_ttl.count())));
    step(knsock_server_config_set_accept_compression(p, cfg.accept_compression));
    if (cfg.header_timeout.count() > 0)
      step(knsock_server_config_set_header_timeout_ms(
          p, static_cast<uint64_t>(cfg.header_timeout.count())));
    if (cfg.max_decoders) step(knsock_server_config_set_max_decoders(p, *cfg.max_decoders));
    if (cfg.hash_budget) step(knsock_server_config_set_hash_budget(p, *cfg.hash_budget));
    if (cfg.mode_mask) step(knsock_server_config_set_mode_mask(p, *cfg.mode_mask));
    step(knsock_server_config_set_raise_fd_limit(p, cfg.raise_fd_limit));
    if (!cfg.tls_cert.empty() || !cfg.tls_key.empty())
      step(knsock_server_config_set_tls_cert(p, cfg.tls_cert.empty() ? nullptr : cfg.tls_cert.c_str(),
                                             cfg.tls_key.empty() ? nullptr : cfg.tls_key.c_str()));
    if (!cfg.tls_self_signed.empty())
      step(knsock_server_config_set_tls_self_signed(p, cfg.tls_self_signed.c_str()));
    if (!cfg.tokens_file.empty())
      step(knsock_server_config_set_tokens_file(p, cfg.tokens_file.c_str()));
    if (!cfg.client_ca.empty()) step(knsock_server_config_set_client_ca(p, cfg.client_ca.c_str()));
    step(knsock_server_config_set_confine_identities(p, cfg.confine_identities));
    for (const auto &[id, sub] : cfg.identity_dirs)
      step(knsock_server_config_set_identity_dir(p, id.c_str(), sub.c_str()));
    step(knsock_server_config_set_allow_plaintext(p, cfg.allow_plaintext));
    step(knsock_server_config_set_allow_legacy(p, cfg.allow_legacy));
    step(knsock_server_config_set_allow_fetch(p, cfg.allow_fetch));
    step(knsock_server_config_set_allow_anonymous_fetch(p, cfg.allow_anonymous_fetch));
    // Set only when given (the C adjusters refuse to run before knsock_server_config_set_s3).
    auto opt = [](const std::string &v) { return v.empty() ? nullptr : v.c_str(); };
    if (!cfg.s3.empty()) step(knsock_server_config_set_s3(p, cfg.s3.c_str()));
    if (!cfg.s3_endpoint.empty())
      step(knsock_server_config_set_s3_endpoint(p, cfg.s3_endpoint.c_str(), cfg.s3_path_style));
    if (!cfg.s3_region.empty()) step(knsock_server_config_set_s3_region(p, cfg.s3_region.c_str()));
    if (opt(cfg.s3_access_key) || opt(cfg.s3_secret_key) || opt(cfg.s3_session_token))
      step(knsock_server_config_set_s3_credentials(p, opt(cfg.s3_access_key),
                                                   opt(cfg.s3_secret_key),
                                                   opt(cfg.s3_session_token)));
    if (!cfg.s3_ca_file.empty()) step(knsock_server_config_set_s3_ca_file(p, cfg.s3_ca_file.c_str()));
    if (cfg.store) {
      auto *held = new (std::nothrow) std::shared_ptr<Store>(cfg.store);
      if (!held) return Result{KNSOCK_RESULT_PANIC, "out of memory", {}, 0};
      const knsock_store_vtable vt = {detail::store_begin, detail::store_write,
                                      detail::store_commit, detail::store_abort,
                                      detail::store_stat,  detail::store_free};
      knsock_result set = knsock_server_config_set_store(p, &vt, held);
      if (set != KNSOCK_RESULT_OK) delete held;  // not taken: the finalizer will not run
      step(set);
    }
    if (rc != KNSOCK_RESULT_OK)
      return Result{rc,
                    "invalid server setting: " +
                        (why.empty() ? detail::str(knsock_result_str(rc)) : why),
                    {}, 0};
    auto *cbs = new (std::nothrow) detail::ServerCallbacks;
    if (!cbs) return Result{KNSOCK_RESULT_PANIC, "out of memory", {}, 0};
    // From here the config owns the callbacks; the library deletes them through the finalizer
    // once the config and the server are gone and no callback can run.
    knsock_server_config_set_finalizer(p, detail::delete_callbacks, cbs);
    cbs->before = cfg.validate_before;
    cbs->after = cfg.validate_after;
    cbs->received = cfg.on_received;
    cbs->error = cfg.on_error;
    if (cbs->before) knsock_server_config_set_pre_validator(p, detail::before_trampoline, cbs);
    if (cbs->after) knsock_server_config_set_post_validator(p, detail::after_trampoline, cbs);
    if (cbs->received)
      knsock_server_config_set_received_handler(p, detail::received_trampoline, cbs);
    if (cbs->error) knsock_server_config_set_error_handler(p, detail::error_trampoline, cbs);
    knsock_server *raw = nullptr;
    knsock_error *err = nullptr;
    rc = knsock_server_start(p, &raw, &err);
    if (rc != KNSOCK_RESULT_OK) return detail::take_result(rc, err);
    handle_.reset(raw);
    return Result{};
  }

  std::unique_ptr<knsock_server, detail::ServerDeleter> handle_;
};

namespace detail {

/// A timeout for knsock_transfer_wait(): whole milliseconds rounded up, 0 for none or a negative
/// one, -1 (no limit) for one that does not fit in int64_t milliseconds. Computed in long double,
/// so no duration overflows (a duration_cast of hours::max() to milliseconds does).
template <class Rep, class Period>
int64_t timeout_ms(std::chrono::duration<Rep, Period> d) noexcept {
  const long double ms = std::chrono::duration<long double, std::milli>(d).count();
  if (!(ms > 0)) return 0;
  if (ms >= static_cast<long double>(std::numeric_limits<int64_t>::max())) return -1;
  const auto whole = static_cast<int64_t>(ms);
  return static_cast<long double>(whole) < ms ? whole + 1 : whole;
}

/// What an async send shares with its library thread; outlives the transfer handle.
struct AsyncState {
  ProgressState progress;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Result result;
#if KNSOCK_HPP_EXCEPTIONS
  std::promise<void> promise;
#endif
};

inline void done_trampoline(void *ud, knsock_result code, const knsock_error *err) noexcept {
  auto *st = static_cast<AsyncState *>(ud);
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    Result r = code == KNSOCK_RESULT_OK ? Result{} : result_of(code, err);
    blame_callback(r, st->progress);
#if KNSOCK_HPP_EXCEPTIONS
    if (r)
      st->promise.set_value();
    else
      st->promise.set_exception(std::make_exception_ptr(Error(r)));
#endif
    std::lock_guard<std::mutex> lock(st->mu);
    st->result = std::move(r);
    st->done = true;
#if KNSOCK_HPP_EXCEPTIONS
  } catch (...) {
    std::lock_guard<std::mutex> lock(st->mu);
    st->result = Result{KNSOCK_RESULT_PANIC, "could not record the result", {}, 0};
    st->done = true;
  }
#endif
  st->cv.notify_all();
}

}  // namespace detail

/// A send or a fetch running on a library thread (kn-sock's send_file_async). Move-only;
/// destroying a running transfer cancels it and waits for its thread.
class [[nodiscard]] Transfer {
 public:
  Transfer() = default;
  Transfer(Transfer &&) noexcept = default;
  Transfer &operator=(Transfer &&other) noexcept {
    if (this != &other) {
      handle_.reset();  // cancels and joins before the state goes
      state_ = std::move(other.state_);
      handle_ = std::move(other.handle_);
    }
    return *this;
  }
  Transfer(const Transfer &) = delete;
  Transfer &operator=(const Transfer &) = delete;
  ~Transfer() { handle_.reset(); }

  explicit operator bool() const noexcept { return handle_ != nullptr; }

  /// Starts sending; on failure to start, the transfer is empty and `*result` tells why.
  static Transfer start(const std::string &host, uint16_t port, const std::string &path,
                        const SendOptions &options, Result *result) noexcept {
    Transfer t;
    Result r = t.open(host, port, path, options);
    if (result) *result = std::move(r);
    return t;
  }

  /// Starts fetching `remotes` into `dest` as try_fetch_files() would; the transfer succeeds
  /// when every listed file was fetched or found unchanged and every name gave something.
  static Transfer start_fetch(const std::string &host, uint16_t port,
                              const std::vector<std::string> &remotes, const std::string &dest,
                              const SendOptions &options, Result *result) noexcept {
    Transfer t;
    Result r = t.open_fetch(host, port, remotes, dest, options);
    if (result) *result = std::move(r);
    return t;
  }

  /// Waits for the end and returns the outcome.
  Result wait() noexcept {
    if (!handle_) return Result{KNSOCK_RESULT_INVALID_ARGUMENT, "empty transfer", {}, 0};
    knsock_transfer_wait(handle_.get(), -1);
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->result;
  }

  /// Waits at most `d` (rounded up to whole milliseconds; a duration too long for the C API,
  /// such as `std::chrono::hours::max()`, waits without limit); true when the transfer has ended.
  template <class Rep, class Period>
  [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> d) noexcept {
    if (!handle_) return true;
    return knsock_transfer_wait(handle_.get(), detail::timeout_ms(d)) != KNSOCK_RESULT_IN_PROGRESS;
  }

  /// Asks it to stop; it ends with KNSOCK_RESULT_CANCELLED and the receiver keeps no file.
  void cancel() noexcept {
    if (handle_) knsock_transfer_cancel(handle_.get());
  }

  /// Bytes sent so far and the total.
  std::pair<uint64_t, uint64_t> progress() const noexcept {
    uint64_t sent = 0, total = 0;
    knsock_transfer_progress(handle_.get(), &sent, &total);
    return {sent, total};
  }

#if KNSOCK_HPP_EXCEPTIONS
  /// Completion as a future: get() returns, or throws knsock::Error. Call once: a second call
  /// throws std::future_error (future_already_retrieved), as does a call on an empty (default
  /// constructed, moved-from or failed to start) transfer (no_state).
  [[nodiscard]] std::future<void> get_future() {
    if (!state_) throw std::future_error(std::future_errc::no_state);
    return state_->promise.get_future();
  }

  /// Waits and throws knsock::Error on failure.
  void get() {
    Result r = wait();
    if (!r) throw Error(std::move(r));
  }
#endif

 private:
  Result open(const std::string &host, uint16_t port, const std::string &path,
              const SendOptions &options) noexcept {
    std::unique_ptr<detail::AsyncState> st(new (std::nothrow) detail::AsyncState);
    if (!st) return Result{KNSOCK_RESULT_PANIC, "out of memory", {}, 0};
    detail::Options opts;
    Result r = detail::check_send(host, path, options, &st->progress, &opts);
    if (!r) return r;
    knsock_transfer *raw = nullptr;
    knsock_error *err = nullptr;
    knsock_result rc = knsock_send_file_async(host.c_str(), port, path.c_str(), opts.get(),
                                              detail::done_trampoline, st.get(), &raw, &err);
    if (rc != KNSOCK_RESULT_OK) return detail::take_result(rc, err);
    state_ = std::move(st);
    handle_.reset(raw);
    return Result{};
  }

  Result open_fetch(const std::string &host, uint16_t port,
                    const std::vector<std::string> &remotes, const std::string &dest,
                    const SendOptions &options) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
    try {
#endif
      std::unique_ptr<detail::AsyncState> st(new (std::nothrow) detail::AsyncState);
      if (!st) return Result{KNSOCK_RESULT_PANIC, "out of memory", {}, 0};
      detail::Options opts;
      std::vector<const char *> cnames;
      Result r =
          detail::check_fetch(host, remotes, dest, options, &st->progress, &opts, &cnames);
      if (!r) return r;
      knsock_fetch_callbacks cbs = detail::fetch_callbacks(options, &st->progress);
      knsock_transfer *raw = nullptr;
      knsock_error *err = nullptr;
      knsock_result rc = knsock_fetch_files_async(
          host.c_str(), port, cnames.data(), cnames.size(), dest.c_str(), opts.get(), &cbs,
          detail::done_trampoline, st.get(), &raw, &err);
      if (rc != KNSOCK_RESULT_OK) return detail::take_result(rc, err);
      state_ = std::move(st);
      handle_.reset(raw);
      return Result{};
#if KNSOCK_HPP_EXCEPTIONS
    } catch (const std::exception &e) {  // std::bad_alloc building the name list
      return Result{KNSOCK_RESULT_PANIC, e.what(), {}, 0};
    }
#endif
  }

  // Declared first so it is destroyed last: the handle's destructor joins the thread that uses
  // the state.
  std::unique_ptr<detail::AsyncState> state_;
  std::unique_ptr<knsock_transfer, detail::TransferDeleter> handle_;
};

#if KNSOCK_HPP_EXCEPTIONS
/// Starts an async send; throws knsock::Error when it cannot start.
inline Transfer send_file_async(const std::string &host, uint16_t port, const std::string &path,
                                const SendOptions &options = {}) {
  Result r;
  Transfer t = Transfer::start(host, port, path, options, &r);
  if (!r) throw Error(std::move(r));
  return t;
}

/// Starts an async fetch (Transfer::start_fetch); throws knsock::Error when it cannot start.
inline Transfer fetch_files_async(const std::string &host, uint16_t port,
                                  const std::vector<std::string> &remotes,
                                  const std::string &dest, const SendOptions &options = {}) {
  Result r;
  Transfer t = Transfer::start_fetch(host, port, remotes, dest, options, &r);
  if (!r) throw Error(std::move(r));
  return t;
}

/// Starts an async fetch of one name.
inline Transfer fetch_file_async(const std::string &host, uint16_t port, const std::string &remote,
                                 const std::string &dest, const SendOptions &options = {}) {
  return fetch_files_async(host, port, {remote}, dest, options);
}
#endif

/// Reads at most `length` bytes of a stream into `buffer` and returns how many, 0 at its end;
/// throws (or, without exceptions, returns knsock::read_abort) to abort the send.
using ReadFn = std::function<std::size_t(uint8_t *buffer, std::size_t length)>;

/// What a ReadFn returns to abort the send (KNSOCK_READ_ABORT).
constexpr std::size_t read_abort = static_cast<std::size_t>(-1);

namespace detail {

struct ReadState {
  ReadFn fn;
  std::string thrown;
};

inline std::size_t read_trampoline(void *ud, uint8_t *buf, std::size_t len) noexcept {
  auto *st = static_cast<ReadState *>(ud);
#if KNSOCK_HPP_EXCEPTIONS
  try {
    return st->fn(buf, len);
  } catch (const std::exception &e) {
    st->thrown = std::string("read callback threw: ") + e.what();
  } catch (...) {
    st->thrown = "read callback threw an unknown exception";
  }
  return read_abort;
#else
  return st->fn(buf, len);
#endif
}

}  // namespace detail

/// Sends what `read` produces until it returns 0 as the file `name` (knsock_send_stream()), and
/// returns once the receiver has it verified, durable and in place; never throws. `size` when
/// known, else the size is known only at the end (progress totals are then 0). A stream that
/// fails, or does not meet its stated size, stores nothing. No retry, no resume. `read` and the
/// progress callback run on the calling thread.
inline Result try_send_stream(const std::string &host, uint16_t port, const std::string &name,
                              ReadFn read, std::optional<uint64_t> size = std::nullopt,
                              const SendOptions &options = {}) noexcept {
#if KNSOCK_HPP_EXCEPTIONS
  try {
#endif
    detail::ProgressState progress;
    detail::Options opts;
    Result r = detail::check_send(host, name, options, &progress, &opts);
    if (!r) return r;
    if (!read) return Result{KNSOCK_RESULT_INVALID_ARGUMENT, "read callback is empty", {}, 0};
    detail::ReadState state{std::move(read), {}};
    knsock_error *err = nullptr;
    knsock_result rc = knsock_send_stream(host.c_str(), port, name.c_str(),
                                          detail::read_trampoline, &state,
                                          size ? *size : KNSOCK_SIZE_UNKNOWN, opts.get(), &err);
    if (rc == KNSOCK_RESULT_OK) return Result{};
    r = detail::take_result(rc, err);
    detail::blame_callback(r, progress);
    if (!state.thrown.empty() && rc == KNSOCK_RESULT_ABORTED_BY_CALLBACK) r.message = state.thrown;
    return r;
#if KNSOCK_HPP_EXCEPTIONS
  } catch (const std::exception &e) {
    return Result{KNSOCK_RESULT_PANIC, e.what(), {}, 0};
  }
#endif
}

#if KNSOCK_HPP_EXCEPTIONS
/// try_send_stream() over a std::istream, read until its end; a stream gone bad aborts it.
inline Result try_send_stream(const std::string &host, uint16_t port, const std::string &name,
                              std::istream &in, std::optional<uint64_t> size = std::nullopt,
                              const SendOptions &options = {}) noexcept {
  ReadFn read = [&in](uint8_t *buf, std::size_t len) -> std::size_t {
    in.read(reinterpret_cast<char *>(buf), static_cast<std::streamsize>(len));
    if (in.bad()) throw std::runtime_error("reading the input stream failed");
    return static_cast<std::size_t>(in.gcount());
  };
  return try_send_stream(host, port, name, std::move(read), size, options);
}

/// try_send_stream(); throws knsock::Error on failure.
template <class Source>
inline void send_stream(const std::string &host, uint16_t port, const std::string &name,
                        Source &&source, std::optional<uint64_t> size = std::nullopt,
                        const SendOptions &options = {}) {
  Result r = try_send_stream(host, port, name, std::forward<Source>(source), size, options);
  if (!r) throw Error(std::move(r));
}
#endif

}  // namespace knsock

#endif  // KNSOCK_HPP
