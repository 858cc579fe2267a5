/* splice_cat FILE: writes FILE to standard output, which must be a pipe, with splice(2): the
 * pipe takes references to the file's cached pages, so this producer spends almost no CPU.
 * bench/stream.py uses it beside `cat` (which reads into its buffer and copies that into the
 * pipe) to tell what a producer's own copying costs from what the stream path costs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: splice_cat FILE > PIPE\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  for (;;) {
    ssize_t n = splice(fd, NULL, STDOUT_FILENO, NULL, 1 << 20, SPLICE_F_MORE);
    if (n == 0)
      return 0;
    if (n < 0) {
      perror("splice");
      return 1;
    }
  }
}
