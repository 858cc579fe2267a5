/* knsock.h alone, twice, in C++11 with warnings as errors. */
#include "knsock.h"
#include "knsock.h"

#include <cstdio>
#include <cstring>

int main(void) {
  knsock_result rc = KNSOCK_RESULT_OK;
  knsock_overwrite policy = KNSOCK_OVERWRITE_REPLACE;
  std::printf("knsock %s (header %s), %s, policy %u\n", knsock_version(), KNSOCK_VERSION_STRING,
         knsock_result_str(rc), static_cast<unsigned>(policy));
  return std::strcmp(knsock_version(), KNSOCK_VERSION_STRING) != 0;
}
