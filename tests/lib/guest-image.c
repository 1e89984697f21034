#include "guest-image.h"

#include <glib.h>
#include <sys/wait.h>

bool guest_image_ready(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;
    const char *argv[] = { SRCDIR "/scripts/guest-image", NULL };
    int status;

    g_assert_true(g_spawn_sync(SRCDIR, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                               NULL, NULL, &out, &status, &err));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        g_test_skip("the guest kernel could not be downloaded "
                    "(scripts/guest-image: no Debian package linux-image-*-amd64 reachable)");
        return false;
    }
    if (!g_spawn_check_wait_status(status, &err))
        g_error("scripts/guest-image failed: %s\n%s", err->message, out ? out : "");
    return true;
}
