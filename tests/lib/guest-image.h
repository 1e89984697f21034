/* The real guest's boot image for tests (scripts/guest-image). */
#ifndef GUEST_IMAGE_H
#define GUEST_IMAGE_H

#include <stdbool.h>

/* Builds the image if needed: false (the test skipped) only if the kernel
 * cannot be downloaded; any other failure fails the test. */
bool guest_image_ready(void);

#endif
