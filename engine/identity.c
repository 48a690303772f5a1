#include "identity.h"

#include "buf.h"

#include <git2.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *git_config_value(git_config *cfg, const char *name)
{
    git_buf value = { 0 };
    char *out = NULL;
    if (git_config_get_string_buf(&value, cfg, name) == 0 && value.ptr && value.ptr[0])
        out = xstrdup(value.ptr);
    git_buf_dispose(&value);
    return out;
}

static char *git_identity(void)
{
    git_config *cfg = NULL;
    if (git_config_open_default(&cfg) != 0)
        return NULL;
    char *name = git_config_value(cfg, "user.name");
    char *email = git_config_value(cfg, "user.email");
    git_config_free(cfg);
    char *out = NULL;
    if (name && email)
        out = xasprintf("%s <%s>", name, email);
    else if (name)
        out = xstrdup(name);
    free(name);
    free(email);
    return out;
}

char *identity_operator(void)
{
    const char *given = getenv("DRCTL_OPERATOR");
    if (given && *given)
        return xstrdup(given);
    char *from_git = git_identity();
    if (from_git)
        return from_git;
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name)
        return xstrdup(pw->pw_name);
    const char *user = getenv("USER");
    return xstrdup(user && *user ? user : "unknown");
}

char *identity_host(void)
{
    char name[256];
    if (gethostname(name, sizeof name) != 0)
        return xstrdup("unknown-host");
    name[sizeof name - 1] = '\0';
    return xstrdup(name);
}
