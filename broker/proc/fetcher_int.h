/*
 * The protocol between the FUSE process (fetcher.c) and the fetcher
 * process (fetch.c): typed messages on a socketpair (wire.h), each with
 * the id of the call it answers.
 */
#ifndef SECRETSFS_FETCHER_INT_H
#define SECRETSFS_FETCHER_INT_H

#define FIELD_MAX	4096		/* refs, names, versions, messages */

/* The messages on the fetcher's socketpair. */
enum fetcher_msg {
	FETCHER_OPEN = 1,	/* backend id, name, type, options JSON */
	FETCHER_CLOSE,		/* backend id */
	FETCHER_FETCH,		/* backend id, ref, field, version */
	FETCHER_LIST,		/* backend id, prefix */
	FETCHER_OK,		/* OPEN and CLOSE done */
	FETCHER_ERR,		/* errno (positive), message */
	FETCHER_VALUE,		/* version, changed s, ns, bytes */
	FETCHER_NAMES,		/* count, names */
	FETCHER_AUTH,		/* unsolicited: an authentication event */
};

#endif
