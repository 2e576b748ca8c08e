/*
 * http_int.h: what the files of the HTTP layer share (the client and its
 * handles in http.c, one transfer in http_transfer.c). Not an interface.
 */
#ifndef SECRETSFS_HTTP_INT_H
#define SECRETSFS_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <curl/curl.h>

#include <secretsfs/http.h>

struct share {
	CURLSH		*sh;
	pthread_mutex_t	 mu[CURL_LOCK_DATA_LAST];
	int		 refs;		/* under the client's lock */
};

struct handle {
	CURL		*easy;
	struct share	*share;
	struct handle	*next;
	char		 err[CURL_ERROR_SIZE];
};

/* Enough of a file's identity to see it replaced or rewritten. */
struct stamp {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	struct timespec	 ctime;
	int		 err;
};

struct http_client {
	char		*base_url;
	char		*ca_file;
	char		*pinned;
	char		*cert;
	char		*key;
	char		*unix_socket;
	struct http_options o;

	pthread_mutex_t	 mu;
	struct share	*share;		/* the current one */
	struct handle	*idle;
	size_t		 nidle;
	struct stamp	 cert_st, key_st;
};

/* --- http.c --------------------------------------------------------------- */

/*
 * A handle for one request: an idle one, or a new one; after a client
 * certificate rotation, one of the new share. 0 or -errno with errbuf.
 */
int http_take_handle(struct http_client *c, struct handle **out,
    char *errbuf, size_t errlen);
/* Keep a handle (and its live connection) for the next request. */
void http_put_handle(struct http_client *c, struct handle *h, bool keep);

/* --- http_transfer.c ------------------------------------------------------ */

/* libcurl's write and header callbacks; arg is the transfer's sink. */
size_t http_on_body(char *p, size_t size, size_t n, void *arg);
size_t http_on_header(char *p, size_t size, size_t n, void *arg);

#endif
