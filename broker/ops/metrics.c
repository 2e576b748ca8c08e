/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list once it serves):
 * the scrape endpoint for /metrics and /healthz, over plain HTTP on
 * loopback or a Unix socket, or TLS with client certificates, and the
 * textfile for node_exporter. Both render what the control socket
 * renders, from the broker's snapshot: nothing here sees a secret value.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <secretsfs/clk.h>
#include <secretsfs/control.h>
#include <secretsfs/log.h>
#include <secretsfs/metrics.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>
#include <secretsfs/wire.h>

#define IO_TIMEOUT_S		5	/* a handshake and head; a write */
#define KEY_FILE_MAX		(64 << 10)
#define REFUSAL_LOG_MS		10000	/* one line per burst of refusals */

struct metrics {
	struct broker	*b;
	int		 fd;		/* the listening socket, or -1 */
	int		 wake[2];
	SSL_CTX		*tls;		/* NULL: plain HTTP */
	char		 unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t		 dev;
	ino_t		 ino;
	bool		 listening;
	pthread_t	 lthread;

	char		*textfile;	/* NULL: none */
	int64_t		 interval_ms;
	bool		 texting;
	bool		 text_failing;
	pthread_t	 tthread;

	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	bool		 stopping;

	int64_t		 refused_at;
	unsigned	 refused;
};

/* --- the request ------------------------------------------------------- */

static bool
is_tchar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

int
metrics_http_route(const char *buf, size_t len, enum metrics_route *route,
    bool *head)
{
	const char *eol, *sp1, *sp2, *target, *end;
	size_t mlen, tlen, i;

	if (!(eol = memchr(buf, '\n', len)))
		return 400;
	if (eol > buf && eol[-1] == '\r')
		eol--;
	for (i = 0; buf + i < eol; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			return 400;
	if (!(sp1 = memchr(buf, ' ', (size_t)(eol - buf))) || sp1 == buf)
		return 400;
	for (i = 0; buf + i < sp1; i++)
		if (!is_tchar(buf[i]))
			return 400;
	target = sp1 + 1;
	if (!(sp2 = memchr(target, ' ', (size_t)(eol - target))) ||
	    sp2 == target)
		return 400;
	if ((size_t)(eol - sp2 - 1) != 8 || (memcmp(sp2 + 1, "HTTP/1.1",
	    8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
		return 400;
	if (target[0] != '/')
		return 400;
	/* The query, if any, is ignored: Prometheus may add params. */
	end = memchr(target, '?', (size_t)(sp2 - target));
	tlen = (size_t)((end ? end : sp2) - target);
	if (tlen == 8 && memcmp(target, "/metrics", 8) == 0)
		*route = METRICS_ROUTE_METRICS;
	else if (tlen == 8 && memcmp(target, "/healthz", 8) == 0)
		*route = METRICS_ROUTE_HEALTHZ;
	else
		return 404;
	mlen = (size_t)(sp1 - buf);
	*head = mlen == 4 && memcmp(buf, "HEAD", 4) == 0;
	if (!*head && !(mlen == 3 && memcmp(buf, "GET", 3) == 0))
		return 405;
	return 200;
}

/* --- one connection ---------------------------------------------------- */

struct io {
	int	 fd;
	SSL	*ssl;
};

static ssize_t
io_read(struct io *io, char *buf, size_t len)
{
	ssize_t n;
	int k;

	if (io->ssl) {
		k = SSL_read(io->ssl, buf, len > INT32_MAX ? INT32_MAX :
		    (int)len);
		return k > 0 ? k : -1;
	}
	do
		n = recv(io->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n > 0 ? n : -1;
}

static void
io_write(struct io *io, const char *buf, size_t len)
{
	ssize_t n;
	int k;

	while (len) {
		if (io->ssl) {
			k = SSL_write(io->ssl, buf, len > INT32_MAX ?
			    INT32_MAX : (int)len);
			if (k <= 0)
				return;
			n = k;
		} else if ((n = send(io->fd, buf, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* The answer to a request: the body as the control socket gives it. */
static void
answer(struct metrics *m, struct io *io, int status,
    enum metrics_route route, bool head)
{
	struct control_cmd cmd = { .verb = route == METRICS_ROUTE_HEALTHZ ?
	    CONTROL_HEALTH : CONTROL_METRICS };
	const char *type = "text/plain; charset=utf-8";
	char hdr[512], why[512] = "", *body = NULL;
	size_t blen = 0;
	FILE *out;
	int n;

	if (!(out = open_memstream(&body, &blen)))
		return;
	if (status == 200) {
		if (control_execute(m->b, &cmd, out, why, sizeof(why)) < 0) {
			/* The health check (or the snapshot) failed. */
			status = route == METRICS_ROUTE_HEALTHZ ? 503 : 500;
			fclose(out);
			free(body);
			body = NULL;
			if (!(out = open_memstream(&body, &blen)))
				return;
			fprintf(out, "unhealthy: %s\n", why);
		} else if (route == METRICS_ROUTE_METRICS)
			type = "text/plain; version=0.0.4; charset=utf-8";
	} else
		fprintf(out, "%d %s\n", status, reason(status));
	if (fclose(out) != 0) {
		free(body);
		return;
	}
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s"
	    "Connection: close\r\n\r\n", status, reason(status), type, blen,
	    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (n > 0 && (size_t)n < sizeof(hdr)) {
		io_write(io, hdr, (size_t)n);
		if (!head)
			io_write(io, body, blen);
	}
	free(body);
}

static bool
head_done(const char *buf, size_t len)
{
	return memmem(buf, len, "\r\n\r\n", 4) || memmem(buf, len, "\n\n", 2);
}

/* A client that fails the handshake: logged, at most once a burst. */
static void
refused(struct metrics *m, int fd)
{
	unsigned long e = ERR_peek_last_error();
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[64] = "?";
	int64_t now = clk_mono_ms();

	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		ss.ss_family = AF_UNSPEC;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    addr, sizeof(addr));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    addr, sizeof(addr));
	m->refused++;
	if (m->refused_at && now - m->refused_at < REFUSAL_LOG_MS)
		return;
	log_warnx("metrics: refused a TLS client from %s: %s (%u refused "
	    "since the last such line)", addr, e ? ERR_reason_error_string(e) :
	    "no handshake", m->refused);
	m->refused_at = now;
	m->refused = 0;
}

/* SSL_accept, on a non-blocking socket so that the deadline holds. */
static int
handshake(SSL *ssl, int fd, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd };
	int fl = fcntl(fd, F_GETFL), k, r = -1;
	int64_t left;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	for (;;) {
		if ((k = SSL_accept(ssl)) == 1) {
			r = 0;
			break;
		}
		switch (SSL_get_error(ssl, k)) {
		case SSL_ERROR_WANT_READ:
			pfd.events = POLLIN;
			break;
		case SSL_ERROR_WANT_WRITE:
			pfd.events = POLLOUT;
			break;
		default:
			goto out;
		}
		if ((left = deadline - clk_mono_ms()) <= 0)
			goto out;
		if ((k = poll(&pfd, 1, (int)left)) == 0 ||
		    (k < 0 && errno != EINTR))
			goto out;
	}
out:
	if (fcntl(fd, F_SETFL, fl) < 0)
		r = -1;
	return r;
}

static void
serve(struct metrics *m, int fd)
{
	char buf[METRICS_HEAD_MAX];
	struct io io = { .fd = fd };
	enum metrics_route route = METRICS_ROUTE_METRICS;
	bool head = false;
	struct timeval tv;
	int64_t deadline, left;
	size_t have = 0;
	ssize_t n;
	int status;

	/*
	 * The handshake and the whole head within IO_TIMEOUT_S, however
	 * slowly they drip in.
	 */
	deadline = clk_mono_ms() + IO_TIMEOUT_S * 1000;
	if (m->tls) {
		ERR_clear_error();
		if (!(io.ssl = SSL_new(m->tls)) ||
		    SSL_set_fd(io.ssl, fd) != 1 ||
		    handshake(io.ssl, fd, deadline) < 0) {
			refused(m, fd);
			SSL_free(io.ssl);
			return;
		}
	}
	while (have < sizeof(buf) && !head_done(buf, have)) {
		if ((left = deadline - clk_mono_ms()) <= 0)
			break;
		tv.tv_sec = left / 1000;
		tv.tv_usec = (left % 1000) * 1000;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if ((n = io_read(&io, buf + have, sizeof(buf) - have)) < 0)
			break;
		have += (size_t)n;
	}
	if (have == 0)
		goto out;
	status = head_done(buf, have) ? metrics_http_route(buf, have, &route,
	    &head) : 400;
	answer(m, &io, status, route, head);
out:
	if (io.ssl) {
		SSL_shutdown(io.ssl);
		SSL_free(io.ssl);
		return;
	}
	/*
	 * Closing with unread bytes would reset the connection and could
	 * lose the answer: read what the client already sent.
	 */
	shutdown(fd, SHUT_WR);
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void *
listen_thread(void *arg)
{
	struct metrics *m = arg;
	int fd;

	while ((fd = wire_accept(m->fd, m->wake[0], IO_TIMEOUT_S)) >= 0) {
		serve(m, fd);
		close(fd);
	}
	return NULL;
}

/* --- the textfile ------------------------------------------------------ */

/*
 * Render into a file beside it and rename it over: node_exporter reads
 * the old file or the new one, never a part. The temporary name starts
 * with a dot and does not end in .prom, which node_exporter skips; it is
 * unlinked and created O_EXCL, so nothing already there is written
 * through.
 */
static int
write_textfile(struct metrics *m, char *why, size_t whylen)
{
	struct control_cmd cmd = { .verb = CONTROL_METRICS };
	char tmp[4096], *body = NULL, *slash;
	size_t blen = 0, off;
	FILE *out;
	ssize_t n;
	int fd, r;

	slash = strrchr(m->textfile, '/');
	if (snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp",
	    (int)(slash - m->textfile + 1), m->textfile, slash + 1) >=
	    (int)sizeof(tmp)) {
		snprintf(why, whylen, "path too long");
		return -ENAMETOOLONG;
	}
	if (!(out = open_memstream(&body, &blen))) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	r = control_execute(m->b, &cmd, out, why, whylen);
	if (fclose(out) != 0 && r == 0) {
		r = -ENOMEM;
		snprintf(why, whylen, "%s", strerror(-r));
	}
	if (r < 0)
		goto out;
	if (unlink(tmp) != 0 && errno != ENOENT) {
		r = -errno;
		snprintf(why, whylen, "%.300s: %s", tmp, strerror(-r));
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) < 0) {
		r = -errno;
		snprintf(why, whylen, "%.300s: %s", tmp, strerror(-r));
		goto out;
	}
	for (off = 0; off < blen; off += (size_t)n)
		if ((n = write(fd, body + off, blen - off)) < 0) {
			if (errno == EINTR) {
				n = 0;
				continue;
			}
			break;
		}
	/* node_exporter runs as its own user: readable whatever the umask. */
	if (off < blen || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		r = -errno;
		close(fd);
		unlink(tmp);
		snprintf(why, whylen, "%.300s: %s", tmp, strerror(-r));
		goto out;
	}
	close(fd);
	if (rename(tmp, m->textfile) != 0) {
		r = -errno;
		unlink(tmp);
		snprintf(why, whylen, "%.300s: %s", m->textfile,
		    strerror(-r));
	}
out:
	free(body);
	return r;
}

/* Say so when writing starts to fail, and when it works again. */
static void
textfile_once(struct metrics *m)
{
	char why[512] = "";

	if (write_textfile(m, why, sizeof(why)) < 0) {
		if (!m->text_failing)
			log_warnx("metrics.textfile: %s", why);
		m->text_failing = true;
	} else if (m->text_failing) {
		log_info("metrics.textfile: %s written again", m->textfile);
		m->text_failing = false;
	}
}

static void *
textfile_thread(void *arg)
{
	struct metrics *m = arg;
	struct timespec at;

	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		pthread_mutex_unlock(&m->lock);
		textfile_once(m);
		pthread_mutex_lock(&m->lock);
		at = clk_deadline(CLOCK_MONOTONIC, m->interval_ms);
		while (!m->stopping && pthread_cond_timedwait(&m->cond,
		    &m->lock, &at) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* --- open and close ---------------------------------------------------- */

/* No passphrase: a key that wants one is refused, never prompted for. */
static int
no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return 0;
}

static void
ssl_why(char *errbuf, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();

	snprintf(errbuf, errlen, "metrics.tls.%s %s: %s", what, path,
	    e ? ERR_reason_error_string(e) : "cannot load it");
	ERR_clear_error();
}

static int
tls_open(struct metrics *m, const struct config_metrics *mc, char *errbuf,
    size_t errlen)
{
	STACK_OF(X509_NAME) *names;
	EVP_PKEY *pkey = NULL;
	uint8_t *key = NULL;
	size_t klen = 0;
	BIO *bio;
	int r;

	if (!(m->tls = SSL_CTX_new(TLS_server_method()))) {
		snprintf(errbuf, errlen, "metrics.tls: out of memory");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(m->tls, TLS1_2_VERSION);
	SSL_CTX_set_options(m->tls, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(m->tls, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(m->tls, 0);
	if (SSL_CTX_use_certificate_chain_file(m->tls, mc->cert_file) != 1) {
		ssl_why(errbuf, errlen, "cert_file", mc->cert_file);
		return -EINVAL;
	}
	/* Private, as every key file: the same check as a backend's. */
	if ((r = secfile_read_private(mc->key_file, KEY_FILE_MAX, &key, &klen,
	    errbuf, errlen)) < 0)
		return r;
	if ((bio = BIO_new_mem_buf(key, (int)klen))) {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	secmem_free(key);
	if (!pkey || SSL_CTX_use_PrivateKey(m->tls, pkey) != 1 ||
	    SSL_CTX_check_private_key(m->tls) != 1) {
		EVP_PKEY_free(pkey);
		ssl_why(errbuf, errlen, "key_file", mc->key_file);
		return -EINVAL;
	}
	EVP_PKEY_free(pkey);
	if (!mc->client_ca_file)
		return 0;
	if (SSL_CTX_load_verify_locations(m->tls, mc->client_ca_file,
	    NULL) != 1 || !(names = SSL_load_client_CA_file(
	    mc->client_ca_file))) {
		ssl_why(errbuf, errlen, "client_ca_file", mc->client_ca_file);
		return -EINVAL;
	}
	SSL_CTX_set_client_CA_list(m->tls, names);
	SSL_CTX_set_verify(m->tls, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

/* A socket left by a daemon that died is replaced; a live one is not. */
static int
unix_clear(const char *path, char *errbuf, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(errbuf, errlen, "metrics.listen: %s exists and is not "
		    "a socket; not replacing it", path);
		return -EEXIST;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (r == 0) {
		snprintf(errbuf, errlen, "metrics.listen: another daemon "
		    "answers on %s", path);
		return -EADDRINUSE;
	}
	unlink(path);
	return 0;
}

static int
listen_open(struct metrics *m, const struct config_metrics *mc,
    char *errbuf, size_t errlen)
{
	struct sockaddr_storage ss;
	struct stat st;
	socklen_t sl;
	bool loopback;
	char why[128];
	int one = 1, r;

	if (config_metrics_addr(mc->listen, &ss, &sl, &loopback, why,
	    sizeof(why)) < 0) {
		snprintf(errbuf, errlen, "metrics.listen: %s", why);
		return -EINVAL;
	}
	if (ss.ss_family == AF_UNIX) {
		memcpy(m->unix_path, ((struct sockaddr_un *)&ss)->sun_path,
		    sizeof(m->unix_path));
		if ((r = unix_clear(m->unix_path, errbuf, errlen)) < 0)
			return r;
	}
	if ((m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    (ss.ss_family != AF_UNIX && setsockopt(m->fd, SOL_SOCKET,
	    SO_REUSEADDR, &one, sizeof(one)) != 0) ||
	    bind(m->fd, (struct sockaddr *)&ss, sl) != 0)
		goto fail;
	if (m->unix_path[0]) {
		/* No peer check here: the mode is the whole access rule. */
		if (chmod(m->unix_path, 0600) != 0 ||
		    stat(m->unix_path, &st) != 0)
			goto fail_unlink;
		m->dev = st.st_dev;
		m->ino = st.st_ino;
	}
	if (listen(m->fd, 16) != 0)
		goto fail_unlink;
	return 0;
fail_unlink:
	r = -errno;
	if (m->unix_path[0])
		unlink(m->unix_path);
	m->unix_path[0] = '\0';
	errno = -r;
fail:
	r = -errno;
	snprintf(errbuf, errlen, "metrics.listen %s: %s", mc->listen,
	    strerror(-r));
	return r;
}

/* The threads take no signal: the signal thread has them all. */
static int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

int
metrics_open(const struct config_metrics *mc, struct broker *b,
    struct metrics **out, char *errbuf, size_t errlen)
{
	struct metrics *m;
	int r;

	*out = NULL;
	if (!(m = calloc(1, sizeof(*m))))
		return -ENOMEM;
	m->b = b;
	m->fd = m->wake[0] = m->wake[1] = -1;
	m->interval_ms = mc->interval_ms;
	pthread_mutex_init(&m->lock, NULL);
	if ((r = clk_cond_init(&m->cond)) < 0) {
		snprintf(errbuf, errlen, "metrics: %s", strerror(-r));
		pthread_mutex_destroy(&m->lock);
		free(m);
		return r;
	}
	if (mc->textfile && !(m->textfile = strdup(mc->textfile))) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "metrics: %s", strerror(-r));
		goto fail;
	}
	if (mc->listen) {
		if ((mc->cert_file && (r = tls_open(m, mc, errbuf,
		    errlen)) < 0) ||
		    (r = listen_open(m, mc, errbuf, errlen)) < 0)
			goto fail;
		if (pipe2(m->wake, O_CLOEXEC) != 0) {
			r = -errno;
			snprintf(errbuf, errlen, "metrics: %s", strerror(-r));
			goto fail;
		}
		if ((r = start_thread(&m->lthread, listen_thread, m)) < 0) {
			snprintf(errbuf, errlen, "metrics: cannot start a "
			    "thread: %s", strerror(-r));
			goto fail;
		}
		m->listening = true;
		log_info("metrics: serving /metrics and /healthz on %s%s",
		    mc->listen, m->tls ? (mc->client_ca_file ? " (TLS, client "
		    "certificates)" : " (TLS)") : "");
	}
	if (m->textfile) {
		if ((r = start_thread(&m->tthread, textfile_thread, m)) < 0) {
			snprintf(errbuf, errlen, "metrics: cannot start a "
			    "thread: %s", strerror(-r));
			goto fail;
		}
		m->texting = true;
		log_info("metrics: writing %s every %lld s", m->textfile,
		    (long long)(m->interval_ms / 1000));
	}
	*out = m;
	return 0;
fail:
	metrics_close(m);
	return r;
}

void
metrics_close(struct metrics *m)
{
	struct stat st;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->listening) {
		(void)!write(m->wake[1], "x", 1);
		pthread_join(m->lthread, NULL);
	}
	if (m->texting) {
		pthread_join(m->tthread, NULL);
		/* The daemon is no longer mounted: the file says up 0. */
		textfile_once(m);
	}
	/* Only our own socket: a successor may already have replaced it. */
	if (m->unix_path[0] && stat(m->unix_path, &st) == 0 &&
	    st.st_dev == m->dev && st.st_ino == m->ino)
		unlink(m->unix_path);
	if (m->fd >= 0)
		close(m->fd);
	if (m->wake[0] >= 0) {
		close(m->wake[0]);
		close(m->wake[1]);
	}
	SSL_CTX_free(m->tls);
	free(m->textfile);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}
