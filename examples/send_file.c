/* Send one file to a knsock (or kn-sock) server, with a progress bar.
 *   send_file HOST PORT FILE
 * Exits 0 once the receiver has the file verified and in place. */
#include <stdio.h>
#include <stdlib.h>

#include "knsock.h"

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s HOST PORT FILE\n", argv[0]);
    return 2;
  }
  knsock_send_options *opts = knsock_send_options_new();
  knsock_send_options_set_show_progress(opts, true);
  knsock_send_options_set_timeout_ms(opts, 30000);

  knsock_error *err = NULL;
  knsock_result rc = knsock_send_file(argv[1], (uint16_t)atoi(argv[2]), argv[3], opts, &err);
  knsock_send_options_free(opts);
  if (rc != KNSOCK_RESULT_OK) {
    fprintf(stderr, "send_file: %s\n", knsock_error_message(err));
    knsock_error_free(err);
    return 1;
  }
  printf("sent %s\n", argv[3]);
  return 0;
}
