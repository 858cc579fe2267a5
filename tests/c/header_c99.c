/* knsock.h alone, twice, in strict C99 with warnings as errors. */
#include "knsock.h"
#include "knsock.h"

#include <stdio.h>
#include <string.h>

int main(void) {
  knsock_result rc = KNSOCK_RESULT_OK;
  knsock_overwrite policy = KNSOCK_OVERWRITE_REPLACE;
  printf("knsock %s (header %s), %s, policy %u\n", knsock_version(), KNSOCK_VERSION_STRING,
         knsock_result_str(rc), (unsigned)policy);
  return strcmp(knsock_version(), KNSOCK_VERSION_STRING) != 0;
}
