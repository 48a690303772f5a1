#include "sshkeys.h"

#include "buf.h"
#include "fsio.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sshkeys_run(proc_result *res, char **argv, char **env, const void *data, size_t len)
{
    proc_request req = {
        .argv = argv, .env = env, .stdin_data = data, .stdin_len = len, .timeout = 60,
        .output_limit = 4 << 20,
    };
    return proc_run(res, &req);
}

char *sshkeys_make(const char *name, const char *type, const char *bits, const char *passphrase)
{
    char *path = xasprintf("%s/%s", test_tmpdir(), name);
    char *argv[] = { "ssh-keygen", "-q", "-t", (char *)type, "-N", (char *)passphrase, "-C", "tester@drctl",
                     "-f", path, bits ? "-b" : NULL, (char *)bits, NULL };
    proc_result res;
    if (sshkeys_run(&res, argv, NULL, NULL, 0) != 0 || res.exit_code != 0) {
        if (res.err)
            printf("    ssh-keygen: %s\n", res.err);
        proc_result_dispose(&res);
        free(path);
        return NULL;
    }
    proc_result_dispose(&res);
    return path;
}

char *sshkeys_public_of(const char *key_path)
{
    char *pub_path = xasprintf("%s.pub", key_path), *text = NULL;
    size_t len;
    int rc = fsio_read_file(&text, &len, pub_path);
    free(pub_path);
    if (rc != 0)
        return NULL;
    char *space = strchr(text, ' ');
    char *second = space ? strchr(space + 1, ' ') : NULL;
    if (!second)
        second = text + strcspn(text, "\n");
    *second = '\0';
    return text;
}
