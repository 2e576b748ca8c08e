/*
 * kubelet: the snapshot of the node's pods, refreshed from the kubelet's
 * GET /pods on demand (singleflight, rate-limited), and the callers
 * resolved against it. Runs in the FUSE process (the SANDBOX_FUSE_KUBELET
 * allow-list) and in `secretsfs explain`.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <secretsfs/clk.h>
#include <secretsfs/http.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/log.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

#include "kubelet_int.h"

struct kubelet {
	struct kubelet_config	 cfg;		/* url always set */
	struct http_client	*http;
	pthread_mutex_t		 lock;
	pthread_cond_t		 done;		/* a refresh ended */
	struct kubelet_pods	*pods;		/* NULL until a success */
	int64_t			 pods_ms;	/* when pods was fetched */
	int64_t			 last_start_ms;	/* the last refresh began; 0 */
	bool			 inflight;
	bool			 last_failed;
	uint64_t		 gen;		/* refreshes ended */
	uint64_t		 requests, errors, hits;
	long			 last_status;
	int			 last_logged;	/* the failure last logged */
};

/* ---- the request -------------------------------------------------------- */

/* "Bearer <token>" in locked memory, from the projected token's file. */
static int
bearer(const struct kubelet *k, char **out, char *why, size_t whylen)
{
	uint8_t *tok;
	size_t len, n;
	char *h;
	int r;

	*out = NULL;
	/* Any mode: a projected token is 0644 in its volume, by design. */
	if ((r = secfile_read(k->cfg.token_file, 0, KUBELET_TOKEN_MAX, &tok,
	    &len, NULL, why, whylen)) < 0)
		return r;
	n = len;
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' ||
	    tok[n - 1] == ' '))
		n--;
	if (n == 0 || memchr(tok, '\n', n) || memchr(tok, '\r', n)) {
		secfile_free(tok, len, 0);
		snprintf(why, whylen, "%s: not a bearer token",
		    k->cfg.token_file);
		return -EINVAL;
	}
	if ((h = secmem_alloc(n + 8)) == NULL) {
		secfile_free(tok, len, 0);
		return -ENOMEM;
	}
	memcpy(h, "Bearer ", 7);
	memcpy(h + 7, tok, n);
	h[n + 7] = '\0';
	secfile_free(tok, len, 0);
	*out = h;
	return 0;
}

static void
say_once(struct kubelet *k, int what, const char *fmt, const char *a,
    const char *b)
{
	if (k->last_logged == what)
		return;
	k->last_logged = what;
	log_warnx(fmt, a, b);
}

/*
 * One GET /pods. Runs without the lock (only this thread refreshes): 0 and
 * *out, or -errno, the reason logged once per change of reason.
 */
static int
fetch(struct kubelet *k, struct kubelet_pods **out, long *status)
{
	struct http_header hdr[2];
	struct http_request req = { .method = "GET", .path = "/pods",
	    .headers = hdr };
	struct http_response resp;
	char why[256], *auth = NULL;
	int r;

	*out = NULL;
	*status = 0;
	hdr[req.nheaders++] = (struct http_header){ "Accept",
	    "application/json" };
	if (!k->cfg.read_only_port) {
		if ((r = bearer(k, &auth, why, sizeof(why))) < 0) {
			say_once(k, 1, "kubelet: cannot read the token: %s%s",
			    why, "");
			return r;
		}
		hdr[req.nheaders++] = (struct http_header){ "Authorization",
		    auth };
	}
	memset(&resp, 0, sizeof(resp));
	r = http_do(k->http, &req, &resp, why, sizeof(why));
	secmem_free(auth);
	if (r < 0) {
		say_once(k, 2, "kubelet: %s unreachable: %s", k->cfg.url, why);
		return r;
	}
	*status = resp.status;
	if (resp.status == 200) {
		r = kubelet_parse_pods(resp.body ? (const char *)resp.body : "",
		    resp.body_len, out);
		if (r == -EPROTO)
			say_once(k, 3, "kubelet: %s/pods did not answer a "
			    "PodList%s", k->cfg.url, "");
		/* Pod specs may hold env values: parsed in locked memory. */
		else if (r == -ENOMEM)
			say_once(k, 7, "kubelet: the pod list of %s does not "
			    "fit in locked memory: raise memory.locked_bytes%s",
			    k->cfg.url, "");
	} else if (resp.status == 401) {
		/* The answer's body is the kubelet's "Unauthorized": no use. */
		r = -EACCES;
		say_once(k, 4, "kubelet: %s rejected the token in %s (401 "
		    "Unauthorized): is it a service account token the API "
		    "server accepts, with its default audience?", k->cfg.url,
		    k->cfg.token_file);
	} else if (resp.status == 403) {
		r = -EPERM;
		say_once(k, 5, "kubelet: %s refused GET /pods (403 Forbidden): "
		    "the service account needs \"get\" on nodes/proxy%s",
		    k->cfg.url, " (deploy/kubernetes/rbac.yaml)");
	} else {
		r = -EPROTO;
		say_once(k, 6, "kubelet: %s/pods answered an unexpected "
		    "status%s", k->cfg.url, "");
	}
	http_response_clear(&resp);
	if (r == 0 && k->last_logged != 0) {
		log_info("kubelet: %s answers again", k->cfg.url);
		k->last_logged = 0;
	}
	return r;
}

/* ---- the snapshot ------------------------------------------------------- */

/*
 * Called with the lock held: refresh unless another thread is doing it
 * (then wait for that one), no sooner than min_refresh after the last one.
 * Returns with the lock held and the refresh, ours or theirs, ended.
 */
static void
refresh_locked(struct kubelet *k)
{
	struct kubelet_pods *fresh, *old;
	uint64_t gen = k->gen;
	int64_t now, wait;
	long status;
	int r;

	for (;;) {
		if (k->gen != gen)
			return;		/* someone refreshed meanwhile */
		if (k->inflight) {
			while (k->inflight)
				pthread_cond_wait(&k->done, &k->lock);
			return;
		}
		now = clk_mono_ms();
		wait = k->last_start_ms + k->cfg.min_refresh_ms - now;
		if (k->last_start_ms == 0 || wait <= 0)
			break;
		{
			struct timespec ts;

			ts = clk_deadline(CLOCK_MONOTONIC, wait);
			pthread_cond_timedwait(&k->done, &k->lock, &ts);
		}
	}
	k->inflight = true;
	k->last_start_ms = clk_mono_ms();
	k->requests++;
	pthread_mutex_unlock(&k->lock);

	r = fetch(k, &fresh, &status);

	pthread_mutex_lock(&k->lock);
	k->last_status = status;
	old = NULL;
	if (r == 0) {
		old = k->pods;
		k->pods = fresh;
		k->pods_ms = clk_mono_ms();
		k->last_failed = false;
	} else {
		k->errors++;
		k->last_failed = true;
	}
	k->inflight = false;
	k->gen++;
	pthread_cond_broadcast(&k->done);
	kubelet_pods_free(old);
}

static bool
stale_locked(const struct kubelet *k)
{
	return k->pods == NULL || clk_mono_ms() - k->pods_ms >= k->cfg.ttl_ms;
}

/*
 * A known pod in a stale snapshot, the kubelet failing: answer from the
 * snapshot rather than make every open wait for another timeout; ask
 * again once a second (or min_refresh, if longer).
 */
static bool
failing_locked(const struct kubelet *k)
{
	int64_t retry = k->cfg.min_refresh_ms > 1000 ? k->cfg.min_refresh_ms :
	    1000;

	return k->last_failed && clk_mono_ms() - k->last_start_ms < retry;
}

int
kubelet_enrich(struct kubelet *k, struct caller *c)
{
	enum identity_k8s_state st;

	memset(&c->k8s, 0, sizeof(c->k8s));
	if (c->pod_uid[0] == '\0')
		return 0;
	pthread_mutex_lock(&k->lock);
	if ((!stale_locked(k) || failing_locked(k)) &&
	    kubelet_lookup(k->pods, c) == IDENTITY_K8S_KNOWN) {
		k->hits++;
		pthread_mutex_unlock(&k->lock);
		return 0;
	}
	/* Unknown, or too old to trust that it is still there: ask. */
	refresh_locked(k);
	st = kubelet_lookup(k->pods, c);
	if (st != IDENTITY_K8S_KNOWN) {
		memset(&c->k8s, 0, sizeof(c->k8s));
		/*
		 * What the last answer said decides: a pod it did not list is
		 * unlisted; with no answer, one never seen is unreachable.
		 */
		c->k8s.state = k->last_failed ? IDENTITY_K8S_UNREACHABLE : st;
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

int
kubelet_find(struct kubelet *k, const char *ns, const char *name,
    const char *container, char pod_uid[64],
    char container_id[IDENTITY_ID_MAX])
{
	int r;

	pthread_mutex_lock(&k->lock);
	refresh_locked(k);
	if (k->pods == NULL)
		r = -EHOSTUNREACH;
	else
		r = kubelet_pods_find(k->pods, ns, name, container, pod_uid,
		    container_id);
	pthread_mutex_unlock(&k->lock);
	return r;
}

void
kubelet_stats(struct kubelet *k, struct kubelet_stats *st)
{
	pthread_mutex_lock(&k->lock);
	st->requests = k->requests;
	st->errors = k->errors;
	st->hits = k->hits;
	st->pods = kubelet_pods_count(k->pods);
	st->last_status = k->last_status;
	pthread_mutex_unlock(&k->lock);
}

/* ---- setup -------------------------------------------------------------- */

static int
default_url(const struct kubelet_config *cfg, char **out)
{
	const char *node = getenv("NODE_NAME");
	char buf[320];

	if (cfg->url)
		return (*out = strdup(cfg->url)) ? 0 : -ENOMEM;
	if (cfg->read_only_port)
		snprintf(buf, sizeof(buf), "%s", KUBELET_DEFAULT_RO_URL);
	/* The kubelet's serving certificate names the node, not 127.0.0.1. */
	else if (node && *node && strlen(node) <= 253 &&
	    strspn(node, "abcdefghijklmnopqrstuvwxyz0123456789-.") ==
	    strlen(node))
		snprintf(buf, sizeof(buf), "https://%s:%d", node,
		    KUBELET_DEFAULT_PORT);
	else
		snprintf(buf, sizeof(buf), "https://127.0.0.1:%d",
		    KUBELET_DEFAULT_PORT);
	return (*out = strdup(buf)) ? 0 : -ENOMEM;
}

int
kubelet_new(const struct kubelet_config *cfg, struct kubelet **out,
    char *errbuf, size_t errlen)
{
	struct http_options o;
	struct kubelet *k;
	int r = -ENOMEM;

	*out = NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return -ENOMEM;
	k->cfg = *cfg;
	k->cfg.url = k->cfg.token_file = k->cfg.ca_file = NULL;
	if ((r = default_url(cfg, &k->cfg.url)) < 0 ||
	    !(k->cfg.token_file = strdup(cfg->token_file ? cfg->token_file :
	    KUBELET_DEFAULT_TOKEN_FILE)) ||
	    !(k->cfg.ca_file = strdup(cfg->ca_file ? cfg->ca_file :
	    KUBELET_DEFAULT_CA_FILE))) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "%s", strerror(-r));
		goto fail;
	}
	if (k->cfg.timeout_ms <= 0)
		k->cfg.timeout_ms = KUBELET_DEFAULT_TIMEOUT_MS;
	if (k->cfg.ttl_ms <= 0)
		k->cfg.ttl_ms = KUBELET_DEFAULT_TTL_MS;
	http_options_default(&o);
	o.tls = !k->cfg.read_only_port;
	o.ca_file = o.tls ? k->cfg.ca_file : NULL;
	o.connect_timeout_ms = k->cfg.timeout_ms;
	o.timeout_ms = k->cfg.timeout_ms;
	/* A failure is the answer for min_refresh: no retries inside one. */
	o.max_retries = 0;
	o.max_response_bytes = KUBELET_BODY_MAX;
	if ((r = http_client_new(k->cfg.url, &o, &k->http, errbuf,
	    errlen)) < 0)
		goto fail;
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		r = -ENOMEM;
		goto fail_http;
	}
	if (clk_cond_init(&k->done) != 0) {
		pthread_mutex_destroy(&k->lock);
		r = -ENOMEM;
		goto fail_http;
	}
	*out = k;
	return 0;
fail_http:
	http_client_free(k->http);
	snprintf(errbuf, errlen, "%s", strerror(-r));
fail:
	kubelet_config_clear(&k->cfg);
	free(k);
	return r;
}

void
kubelet_free(struct kubelet *k)
{
	if (k == NULL)
		return;
	kubelet_pods_free(k->pods);
	http_client_free(k->http);
	pthread_cond_destroy(&k->done);
	pthread_mutex_destroy(&k->lock);
	kubelet_config_clear(&k->cfg);
	free(k);
}
