/* C side of the Go binding: trampolines with the exact callback signatures of knsock.h, which
 * forward to the Go functions exported in callbacks.go. Userdata is a runtime/cgo.Handle (an
 * integer), never a Go pointer. Definitions are in trampolines.c. */
#ifndef KNSOCK_GO_TRAMPOLINES_H
#define KNSOCK_GO_TRAMPOLINES_H

#include <stdint.h>

#include <knsock.h>

void *knsock_go_userdata(uintptr_t handle);

int knsock_go_progress_tramp(void *userdata, const char *filename, uint64_t sent, uint64_t total);
int knsock_go_batch_progress_tramp(void *userdata, const char *filename, size_t index, size_t count,
                                   uint64_t file_sent, uint64_t file_total, uint64_t sent,
                                   uint64_t total);
int knsock_go_multi_progress_tramp(void *userdata, size_t receiver, const char *filename,
                                   size_t index, size_t count, uint64_t file_sent,
                                   uint64_t file_total, uint64_t sent, uint64_t total);
void knsock_go_done_tramp(void *userdata, enum knsock_result code, const struct knsock_error *error);
int knsock_go_pre_validator_tramp(void *userdata, const struct knsock_file_info *info, char *reason,
                                  size_t reason_len);
int knsock_go_post_validator_tramp(void *userdata, const struct knsock_file_info *info, char *reason,
                                   size_t reason_len);
void knsock_go_received_tramp(void *userdata, const struct knsock_file_info *info);
void knsock_go_error_tramp(void *userdata, enum knsock_result code, const char *message,
                           const char *peer);
void knsock_go_finalizer_tramp(void *userdata);
size_t knsock_go_read_tramp(void *userdata, uint8_t *buffer, size_t length);
/* knsock_server_config_set_store() with the Go store trampolines; `handle` is the Store's. */
enum knsock_result knsock_go_set_store(struct knsock_server_config *config, uintptr_t handle);

#endif
