/* ids: the names and secrets neon-local makes up, as Neon's look, and the
 * time stamps it writes. */
#ifndef DRCTL_NL_IDS_H
#define DRCTL_NL_IDS_H

/* Neon-style ids: "spring-example-302709", "br-wispy-meadow-a1b2c3d4"
 * (prefix "" for a project). Caller frees. */
char *nl_new_id(const char *prefix);

/* A random (version 4) UUID, as operations' ids are. Caller frees. */
char *nl_new_uuid(void);

/* A role's password: "npg_" and 24 hex digits. Caller frees. */
char *nl_new_password(void);

/* Now, in UTC and whole seconds: "2026-01-11T14:30:00Z". Caller frees. */
char *nl_now_text(void);

#endif
