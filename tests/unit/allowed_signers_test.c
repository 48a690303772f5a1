/* allowed_signers: the ssh-keygen(1) ALLOWED SIGNERS format, with verdicts
 * checked against ssh-keygen -Y verify itself. */
#include "sshkeys.h"
#include "test.h"

#include "allowed_signers.h"
#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "proc.h"
#include "sshsig.h"
#include "timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------ */

/* A fresh ed25519 key's public key (caller frees). */
static char *new_public_key(const char *name)
{
    char *path = sshkeys_make(name, "ed25519", NULL, "");
    char *pub = path ? sshkeys_public_of(path) : NULL;
    free(path);
    return pub;
}

static allowed_signers *parse(const char *text)
{
    allowed_signers *a = NULL;
    if (allowed_signers_parse(&a, "allowed", text) != 0)
        printf("    parse: %s\n", err_last());
    return a;
}

/* The message of a file that must be refused. */
static const char *refusal(const char *text)
{
    allowed_signers *a = NULL;
    const char *path = test_write_file("allowed", text);
    int rc = allowed_signers_load(&a, path);
    allowed_signers_free(a);
    return rc == DR_EUSAGE ? err_last() : "(accepted)";
}

static double utc(const char *rfc3339)
{
    double t = 0;
    timefmt_parse_timestamp(&t, rfc3339);
    return t;
}

/* ---- the manual's example ------------------------------------------------------- */

static void allowed_signers_the_manual_example_means_what_it_says(void)
{
    char *rsa_path = sshkeys_make("user1", "rsa", "2048", "");
    CHECK(rsa_path);
    char *rsa = sshkeys_public_of(rsa_path), *ca = new_public_key("ca"), *file_key = new_public_key("user2");
    CHECK(rsa && ca && file_key);
    char *text = xasprintf("# Comments allowed at start of line\n"
                           "user1@example.com,user2@example.com %s\n"
                           "# A certificate authority, trusted for all principals in a domain.\n"
                           "*@example.com cert-authority %s\n"
                           "# A key that is accepted only for file signing.\n"
                           "user2@example.com namespaces=\"file\" %s\n",
                           rsa, ca, file_key);
    const char *path = test_write_file("allowed_signers", text);
    allowed_signers *a = NULL;
    CHECK(allowed_signers_load(&a, path) == 0);
    CHECK(allowed_signers_count(a) == 3);
    const char *why = NULL;
    double now = timefmt_now();

    CHECK(allowed_signers_permits(a, "user1@example.com", rsa, "git", now, &why) == 1);
    CHECK_STR(why, "");
    CHECK(allowed_signers_permits(a, "user2@example.com", rsa, "git", now, NULL) == 1);
    CHECK(allowed_signers_permits(a, "user3@example.com", rsa, "git", now, &why) == 0);
    CHECK_CONTAINS(why, ":2 lists this key for \"user1@example.com,user2@example.com\", which does not match "
                        "\"user3@example.com\"");

    CHECK(allowed_signers_permits(a, "user1@example.com", ca, "git", now, &why) == 0);
    CHECK_CONTAINS(why, ":4 lists this key as a cert-authority");

    CHECK(allowed_signers_permits(a, "user2@example.com", file_key, "file", now, &why) == 1);
    CHECK(allowed_signers_permits(a, "user2@example.com", file_key, "git", now, &why) == 0);
    CHECK_CONTAINS(why, ":6 allows this key to sign only in namespaces \"file\", not in \"git\"");

    CHECK_STR(allowed_signers_principals_of(a, rsa), "user1@example.com,user2@example.com");
    CHECK_STR(allowed_signers_principals_of(a, file_key), "user2@example.com");
    CHECK(allowed_signers_principals_of(a, ca) == NULL);
    char *stranger = new_public_key("stranger");
    CHECK(allowed_signers_principals_of(a, stranger) == NULL);
    CHECK(allowed_signers_permits(a, "user1@example.com", stranger, "git", now, &why) == 0);
    CHECK_CONTAINS(why, "no line of ");
    CHECK_CONTAINS(why, "lists the signing key SHA256:");
    CHECK(allowed_signers_permits(a, "user1@example.com", "not a key", "git", now, &why) == 0);
    CHECK_CONTAINS(why, "the signing key is not a public key");

    allowed_signers_free(a);
    free(stranger);
    free(text);
    free(rsa);
    free(ca);
    free(file_key);
    free(rsa_path);
}

/* ---- patterns ------------------------------------------------------------------------ */

static void allowed_signers_patterns_are_ssh_pattern_lists(void)
{
    CHECK(allowed_signers_match_list("a", "*") == 1);
    CHECK(allowed_signers_match_list("", "*") == 1);
    CHECK(allowed_signers_match_list("abc", "a*c") == 1);
    CHECK(allowed_signers_match_list("ab", "a*c") == 0);
    CHECK(allowed_signers_match_list("a.b", "a?b") == 1);
    CHECK(allowed_signers_match_list("ab", "a?b") == 0);
    CHECK(allowed_signers_match_list("aaa", "*a*a*a*") == 1);
    CHECK(allowed_signers_match_list("aa", "*a*a*a*") == 0);
    CHECK(allowed_signers_match_list("Alice@x", "alice@x") == 0);
    CHECK(allowed_signers_match_list("x", "y,x") == 1);
    CHECK(allowed_signers_match_list("x", "!x,*") == -1);
    CHECK(allowed_signers_match_list("x", "*,!x") == -1);
    CHECK(allowed_signers_match_list("y", "!x,*") == 1);
    /* A negation alone never matches (ssh_config PATTERNS). */
    CHECK(allowed_signers_match_list("y", "!x") == 0);
    CHECK(allowed_signers_match_list("host3", "!host1,!host2") == 0);
    CHECK(allowed_signers_match_list("host3", "!host1,!host2,*") == 1);

    char *key = new_public_key("k");
    CHECK(key);
    char *text = xasprintf("*@ops.example.com,!mallory@ops.example.com,al?ce@example.com %s\n", key);
    allowed_signers *a = parse(text);
    CHECK(a);
    const char *why;
    CHECK(allowed_signers_permits(a, "alice@example.com", key, "git", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "alyce@example.com", key, "git", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "bob@ops.example.com", key, "git", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "allice@example.com", key, "git", 0, &why) == 0);
    CHECK_CONTAINS(why, "does not match \"allice@example.com\"");
    CHECK(allowed_signers_permits(a, "mallory@ops.example.com", key, "git", 0, &why) == 0);
    CHECK_CONTAINS(why, "which excludes \"mallory@ops.example.com\"");
    allowed_signers_free(a);
    free(text);

    /* Principals in double quotes, and a key given with its comment. */
    text = xasprintf("\"alice@example.com,bob@example.com\" %s alice's laptop\n", key);
    a = parse(text);
    CHECK(a);
    char *with_comment = xasprintf("%s some comment", key);
    CHECK(allowed_signers_permits(a, "bob@example.com", with_comment, "git", 0, &why) == 1);
    CHECK_STR(allowed_signers_principals_of(a, with_comment), "alice@example.com,bob@example.com");
    allowed_signers_free(a);
    free(with_comment);
    free(text);
    free(key);
}

static void allowed_signers_namespaces_are_pattern_lists(void)
{
    char *key = new_public_key("k");
    CHECK(key);
    char *text = xasprintf("a@x namespaces=\"git,file\" %s\n"
                           "b@x NameSpaces=\"g*\" %s\n"
                           "c@x namespaces=\"!git,*\" %s\n"
                           "d@x namespaces=\"\" %s\n",
                           key, key, key, key);
    allowed_signers *a = parse(text);
    CHECK(a);
    const char *why;
    CHECK(allowed_signers_permits(a, "a@x", key, "git", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "a@x", key, "file", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "a@x", key, "email", 0, &why) == 0);
    CHECK_CONTAINS(why, "allowed:1 allows this key to sign only in namespaces \"git,file\", not in \"email\"");
    CHECK(allowed_signers_permits(a, "b@x", key, "gitlab", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "b@x", key, "file", 0, &why) == 0);
    CHECK(allowed_signers_permits(a, "c@x", key, "file", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "c@x", key, "git", 0, &why) == 0);
    CHECK(allowed_signers_permits(a, "d@x", key, "git", 0, &why) == 0);
    allowed_signers_free(a);
    free(text);
    free(key);
}

/* Several lines for one key: any may permit, and the why is the one of the
 * line that came closest. */
static void allowed_signers_every_line_of_a_key_is_tried(void)
{
    char *key = new_public_key("k");
    CHECK(key);
    char *text = xasprintf("bob@x %s\n"
                           "alice@x namespaces=\"file\" %s\n"
                           "alice@x valid-before=\"20200101Z\" %s\n"
                           "carol@x %s\n",
                           key, key, key, key);
    allowed_signers *a = parse(text);
    CHECK(a);
    const char *why;
    CHECK(allowed_signers_permits(a, "alice@x", key, "git", utc("2025-01-01T00:00:00Z"), &why) == 0);
    CHECK_CONTAINS(why, "allowed:2 allows this key to sign only in namespaces \"file\"");
    CHECK(allowed_signers_permits(a, "alice@x", key, "git", utc("2019-06-01T00:00:00Z"), &why) == 1);
    CHECK(allowed_signers_permits(a, "alice@x", key, "file", utc("2025-01-01T00:00:00Z"), &why) == 1);
    CHECK(allowed_signers_permits(a, "carol@x", key, "git", 0, &why) == 1);
    CHECK(allowed_signers_permits(a, "dave@x", key, "git", 0, &why) == 0);
    CHECK_CONTAINS(why, "allowed:1 lists this key for \"bob@x\", which does not match \"dave@x\"");
    CHECK_STR(allowed_signers_principals_of(a, key), "bob@x");
    allowed_signers_free(a);
    free(text);
    free(key);
}

/* ---- validity --------------------------------------------------------------------------------- */

static void allowed_signers_valid_after_and_before_bound_the_signing_time(void)
{
    char *key = new_public_key("k");
    CHECK(key);
    char *text = xasprintf("a@x valid-after=\"20240101Z\",valid-before=\"20240201120000Z\" %s\n"
                           "b@x VALID-AFTER=\"202403041530utc\" %s\n"
                           "c@x valid-before=\"202403041530z\" %s\n",
                           key, key, key);
    allowed_signers *a = parse(text);
    CHECK(a);
    const char *why;
    CHECK(allowed_signers_permits(a, "a@x", key, "git", utc("2023-12-31T23:59:59Z"), &why) == 0);
    CHECK_CONTAINS(why, "allowed:1: the key is not yet valid at 2023-12-31T23:59:59Z: valid-after=\"20240101Z\" "
                        "(2024-01-01T00:00:00Z)");
    CHECK(allowed_signers_permits(a, "a@x", key, "git", utc("2024-01-01T00:00:00Z"), &why) == 1);
    CHECK(allowed_signers_permits(a, "a@x", key, "git", utc("2024-02-01T12:00:00Z"), &why) == 1);
    /* Whole seconds, as ssh-keygen compares. */
    CHECK(allowed_signers_permits(a, "a@x", key, "git", utc("2024-02-01T12:00:00.900Z"), &why) == 1);
    CHECK(allowed_signers_permits(a, "a@x", key, "git", utc("2024-02-01T12:00:01Z"), &why) == 0);
    CHECK_CONTAINS(why, "allowed:1: the key has expired at 2024-02-01T12:00:01Z: valid-before=\"20240201120000Z\"");
    CHECK(allowed_signers_permits(a, "b@x", key, "git", utc("2024-03-04T15:29:59Z"), &why) == 0);
    CHECK(allowed_signers_permits(a, "b@x", key, "git", utc("2024-03-04T15:30:00Z"), &why) == 1);
    CHECK(allowed_signers_permits(a, "c@x", key, "git", utc("2024-03-04T15:30:00Z"), &why) == 1);
    CHECK(allowed_signers_permits(a, "c@x", key, "git", utc("2024-03-04T15:30:01Z"), &why) == 0);
    CHECK(allowed_signers_permits(a, "c@x", key, "git", NAN, &why) == 0);
    CHECK_CONTAINS(why, "not a number");
    CHECK(allowed_signers_permits(a, "c@x", key, "git", -1e300, &why) == 1);
    CHECK(allowed_signers_permits(a, "b@x", key, "git", 1e300, &why) == 1);
    allowed_signers_free(a);
    free(text);
    free(key);
}

/* Without Z, a time is local time, read as ssh-keygen reads it (a summer
 * time shifted by the zone's DST offset). POSIX TZ strings need no tzdata. */
static void check_local_times(const char *key)
{
    char *text = xasprintf("a@x valid-after=\"20240101\" %s\n"
                           "b@x valid-after=\"20240701120000\" %s\n", key, key);
    allowed_signers *a = parse(text);
    free(text);
    CHECK(a);
    const char *why;
    CHECK(allowed_signers_permits(a, "a@x", key, "git", utc("2023-12-31T22:59:59Z"), &why) == 0);
    CHECK(allowed_signers_permits(a, "a@x", key, "git", utc("2023-12-31T23:00:00Z"), &why) == 1);
    CHECK(allowed_signers_permits(a, "b@x", key, "git", utc("2024-07-01T10:59:59Z"), &why) == 0);
    CHECK(allowed_signers_permits(a, "b@x", key, "git", utc("2024-07-01T11:00:00Z"), &why) == 1);
    allowed_signers_free(a);
}

static void allowed_signers_times_without_z_are_local_as_ssh_keygen_reads_them(void)
{
    char *key = new_public_key("k");
    CHECK(key);
    char *saved = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
    check_local_times(key);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    free(key);
}

/* ---- comments and layout ----------------------------------------------------------------------------- */

static void allowed_signers_comments_blank_lines_and_crlf_are_fine(void)
{
    char *key = new_public_key("k");
    CHECK(key);
    char *text = xasprintf("# team signers\n"
                           "\n"
                           "   \t\n"
                           "   # indented comment\n"
                           "  alice@x \t %s   alice's laptop # not a comment marker here\r\n"
                           "bob@x namespaces=\"git\"   %s\r\n"
                           "carol@x %s",     /* no newline at the end */
                           key, key, key);
    allowed_signers *a = parse(text);
    CHECK(a);
    CHECK(allowed_signers_count(a) == 3);
    CHECK(allowed_signers_permits(a, "alice@x", key, "git", 0, NULL) == 1);
    CHECK(allowed_signers_permits(a, "bob@x", key, "git", 0, NULL) == 1);
    CHECK(allowed_signers_permits(a, "carol@x", key, "git", 0, NULL) == 1);
    allowed_signers_free(a);
    free(text);
    a = parse("# nobody yet\n\n");
    CHECK(a);
    CHECK(allowed_signers_count(a) == 0);
    allowed_signers_free(a);
    a = parse("");
    CHECK(a);
    allowed_signers_free(a);
    free(key);
}

static int starts(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* ---- malformed lines ------------------------------------------------------------------------------------ */

static void allowed_signers_each_malformed_line_is_named_with_its_fix(void)
{
    char *key = new_public_key("k");
    CHECK(key);
    const char *b64 = strchr(key, ' ') + 1;
    char *rsa_named = xasprintf("ssh-rsa %s", b64);
    struct { const char *line, *message; } cases[] = {
        { "alice@x", "\"alice@x\" is followed by no key; add the signer's key type and base64 key" },
        { key, "the line starts with the key type ssh-ed25519: the principals are missing" },
        { "alice@x namespaces=git <KEY>", "the value of namespaces= must be in double quotes, as ssh-keygen requires; "
                                        "write namespaces=\"git\"" },
        { "alice@x namespaces=\"git <KEY>", "a double quote in the options is not closed" },
        { "alice@x foo=\"x\" <KEY>", "unknown option \"foo\"; the options are cert-authority, namespaces=" },
        { "alice@x namespaces=\"git\", <KEY>", "the options end with a comma; remove it" },
        { "alice@x namespaces=\"a\",namespaces=\"b\" <KEY>", "namespaces= is given twice" },
        { "alice@x valid-after=\"2024\" <KEY>", "valid-after=\"2024\" is not a time ssh-keygen reads; write YYYYMMDD" },
        { "alice@x valid-before=\"20240230Z\" <KEY>", "valid-before=\"20240230Z\" is not a time" },
        { "alice@x valid-after=\"20240101T00\" <KEY>", "is not a time" },
        { "alice@x valid-after=\"20240201Z\",valid-before=\"20240101Z\" <KEY>",
          "valid-before=\"20240101Z\" is not after valid-after=\"20240201Z\"" },
        { "alice@x namespaces=\"git\"x <KEY>", "\"x\" follows an option; separate options with commas and no spaces" },
        { "alice@x ssh-ed25519", "the key type ssh-ed25519 is not followed by its base64 key" },
        { "alice@x ssh-ed25519 AAAA!!", "the ssh-ed25519 key is not valid (the key is not valid base64)" },
        { "alice@x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "the ssh-ed25519 key is not valid (the key blob is truncated)" },
        { "alice@x <RSA>", "the ssh-rsa key is not valid (the base64 key holds a key of another type" },
        { "alice@x namespaces=\"git\"", "the options are followed by no key" },
        { "alice@x namespaces=\"git\" ssh-foo AAAA", "\"ssh-foo\" is not a key type (ssh-ed25519, ssh-rsa" },
        { "alice@x ssh-ed52219 AAAA", "\"ssh-ed52219\" is neither a key type (ssh-ed25519" },
        { "\"alice@x <KEY>", "the principals' opening double quote is not closed" },
        { "\"\" <KEY>", "the principals are empty" },
        { "namespaces=\"git\" <KEY>", "\"namespaces=\"git\"\" stands where the principals go; the principals come first" },
        { "alice@x cert-authorityx <KEY>", "\"cert-authorityx\" is neither a key type" },
        { "alice@x cert-authority,bogus <KEY>", "unknown option \"bogus\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* <KEY> and <RSA> stand for a real key ('<' is not base64). */
        buf line = BUF_INIT;
        const char *p = cases[i].line, *hole;
        while ((hole = strchr(p, '<')) && (starts(hole, "<KEY>") || starts(hole, "<RSA>"))) {
            buf_append(&line, p, (size_t)(hole - p));
            buf_puts(&line, starts(hole, "<RSA>") ? rsa_named : key);
            p = hole + 5;
        }
        buf_puts(&line, p);
        char *text = xasprintf("# first line\n%s %s\n\n%s\n", "zed@x", key, line.data);
        const char *message = refusal(text);
        char *where = xasprintf("%s/allowed:4: ", test_tmpdir());
        if (!strstr(message, where) || !strstr(message, cases[i].message) ||
            !strstr(message, "(one line: principals [options] keytype base64)"))
            printf("    line: %s\n    want: %s\n", line.data, cases[i].message);
        CHECK_CONTAINS(message, where);
        CHECK_CONTAINS(message, cases[i].message);
        CHECK_CONTAINS(message, "(one line: principals [options] keytype base64)");
        free(where);
        free(text);
        buf_dispose(&line);
    }
    free(rsa_named);
    free(key);
}

static void allowed_signers_unreadable_and_binary_files_are_refused(void)
{
    allowed_signers *a = NULL;
    char *missing = xasprintf("%s/none", test_tmpdir());
    CHECK(allowed_signers_load(&a, missing) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), missing);
    CHECK_CONTAINS(err_last(), "gpg.ssh.allowedSignersFile");
    free(missing);
    char *path = xasprintf("%s/binary", test_tmpdir());
    CHECK(fsio_write_durable(path, "# a\n# b\nx\0y\n", 12) == 0);
    CHECK(allowed_signers_load(&a, path) == DR_EUSAGE);
    char *where = xasprintf("%s:3: a NUL byte", path);
    CHECK_CONTAINS(err_last(), where);
    CHECK(a == NULL);
    free(where);
    free(path);
}

/* ---- the same verdicts as ssh-keygen -Y verify -------------------------------------------------------------- */

typedef struct verdict_case {
    const char *principal, *ns, *when;  /* when: YYYYMMDDHHMMSSZ */
} verdict_case;

static int ssh_keygen_permits(const char *allowed_path, const char *sig_path, const verdict_case *c,
                              const char *data)
{
    char *when = xasprintf("verify-time=%s", c->when);
    char *argv[] = { "ssh-keygen", "-Y", "verify", "-f", (char *)allowed_path, "-I", (char *)c->principal, "-n",
                     (char *)c->ns, "-s", (char *)sig_path, "-O", when, NULL };
    proc_result res;
    int code = sshkeys_run(&res, argv, NULL, data, strlen(data)) == 0 ? res.exit_code : -1;
    proc_result_dispose(&res);
    free(when);
    return code == 0;
}

static double epoch_of(const char *compact)
{
    char rfc[32];
    snprintf(rfc, sizeof rfc, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", compact, compact + 4, compact + 6, compact + 8,
             compact + 10, compact + 12);
    return utc(rfc);
}

static void compare_with_ssh_keygen(const char *key_path)
{
    sshsig_key *k = NULL;
    CHECK(sshsig_key_load(&k, key_path) == 0);
    const char *pub = sshsig_key_public(k);
    char *text = xasprintf("# cross-check\n"
                           "*@ops.x,!eve@ops.x namespaces=\"git\" %s\n"
                           "al?ce@x,bob@x valid-after=\"20240101Z\",valid-before=\"20241231235959Z\" %s\n"
                           "carol@x namespaces=\"!git,*\",valid-after=\"20240701120000\" %s\n"
                           "dave@x cert-authority %s\n",
                           pub, pub, pub, pub);
    char *allowed = xstrdup(test_write_file("allowed_signers", text));
    const char *data = "tree abc\n\naudit entry\n";
    char *sig_git = NULL, *sig_file = NULL;
    CHECK(sshsig_sign(&sig_git, k, "git", data, strlen(data)) == 0);
    CHECK(sshsig_sign(&sig_file, k, "file", data, strlen(data)) == 0);
    char *git_path = xstrdup(test_write_file("git.sig", sig_git));
    char *file_path = xstrdup(test_write_file("file.sig", sig_file));
    allowed_signers *a = parse(text);
    CHECK(a);
    static const verdict_case cases[] = {
        { "joe@ops.x", "git", "20250101000000Z" }, { "joe@ops.x", "file", "20250101000000Z" },
        { "eve@ops.x", "git", "20250101000000Z" }, { "alice@x", "git", "20231231235959Z" },
        { "alice@x", "git", "20240101000000Z" }, { "alyce@x", "file", "20240601000000Z" },
        { "bob@x", "git", "20241231235959Z" }, { "bob@x", "git", "20250101000000Z" },
        { "carol@x", "git", "20250101000000Z" }, { "carol@x", "file", "20240701105959Z" },
        { "carol@x", "file", "20240701110000Z" }, { "dave@x", "git", "20250101000000Z" },
        { "zed@x", "git", "20250101000000Z" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const verdict_case *c = &cases[i];
        int theirs = ssh_keygen_permits(allowed, strcmp(c->ns, "git") == 0 ? git_path : file_path, c, data);
        const char *why = NULL;
        int ours = allowed_signers_permits(a, c->principal, pub, c->ns, epoch_of(c->when), &why);
        if (ours != theirs)
            printf("    %s %s %s: ssh-keygen %d, drctl %d (%s)\n", c->principal, c->ns, c->when, theirs, ours, why);
        CHECK(ours == theirs);
    }
    allowed_signers_free(a);
    free(git_path);
    free(file_path);
    free(sig_git);
    free(sig_file);
    free(allowed);
    free(text);
    sshsig_key_free(k);
}

static void allowed_signers_verdicts_equal_ssh_keygen_verify(void)
{
    char *key_path = sshkeys_make("id_ed25519", "ed25519", NULL, "");
    CHECK(key_path);
    /* Local times in a zone with summer time: ssh-keygen's reading is the reference. */
    char *saved = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
    compare_with_ssh_keygen(key_path);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    free(key_path);
}

TEST_SUITE(allowed_signers)
{
    REGISTER(allowed_signers_the_manual_example_means_what_it_says);
    REGISTER(allowed_signers_patterns_are_ssh_pattern_lists);
    REGISTER(allowed_signers_namespaces_are_pattern_lists);
    REGISTER(allowed_signers_every_line_of_a_key_is_tried);
    REGISTER(allowed_signers_valid_after_and_before_bound_the_signing_time);
    REGISTER(allowed_signers_times_without_z_are_local_as_ssh_keygen_reads_them);
    REGISTER(allowed_signers_comments_blank_lines_and_crlf_are_fine);
    REGISTER(allowed_signers_each_malformed_line_is_named_with_its_fix);
    REGISTER(allowed_signers_unreadable_and_binary_files_are_refused);
    REGISTER(allowed_signers_verdicts_equal_ssh_keygen_verify);
}
