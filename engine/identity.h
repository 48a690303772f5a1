/* identity: who is acting and where, for the journal and the audit trail. */
#ifndef DRCTL_IDENTITY_H
#define DRCTL_IDENTITY_H

/* DRCTL_OPERATOR, else git's "user.name <user.email>", else the login
 * name. Never NULL; caller frees. */
char *identity_operator(void);

/* This machine's host name; caller frees. */
char *identity_host(void);

#endif
