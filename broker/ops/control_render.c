/*
 * Runs in the FUSE process: status and metrics, rendered from a broker
 * snapshot of names, versions, times and counters. Nothing here ever
 * sees a secret value.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <secretsfs/control.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

/* s as a JSON string (invalid UTF-8 becomes '?'); NULL as null. */
static void
json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, k;

	if (!s) {
		fputs("null", f);
		return;
	}
	n = strlen(s);
	fputc('"', f);
	while (n) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p, f);
		} else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if ((k = utf8_len(p, n)) == 0)
			fputc('?', f);
		else {
			fwrite(p, 1, k, f);
			p += k;
			n -= k;
			continue;
		}
		p++;
		n--;
	}
	fputc('"', f);
}

/* A Prometheus label value. */
static void
label(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), k;

	fputc('"', f);
	while (n) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p < 0x20 || *p == 0x7f || (k = utf8_len(p, n)) == 0)
			fputc('?', f);
		else {
			fwrite(p, 1, k, f);
			p += k;
			n -= k;
			continue;
		}
		p++;
		n--;
	}
	fputc('"', f);
}

static void
rfc3339(char *buf, size_t len, const struct timespec *ts)
{
	struct tm tm;

	if (!ts->tv_sec) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&ts->tv_sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
json_time(FILE *f, const struct timespec *ts)
{
	char t[64];

	if (!ts->tv_sec) {
		fputs("null", f);
		return;
	}
	rfc3339(t, sizeof(t), ts);
	json_str(f, t);
}

/* "3m12s" */
static void
human_ms(char *buf, size_t len, int64_t ms)
{
	int64_t s = ms / 1000;

	if (ms < 0)
		snprintf(buf, len, "-");
	else if (s < 60)
		snprintf(buf, len, "%" PRId64 ".%01" PRId64 "s", s,
		    (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600,
		    (s % 3600) / 60);
}

static const char *
state_name(const struct broker_secret_info *si)
{
	if (!si->cached)
		return "unread";
	if (si->cache.fetching && si->cache.state == REFRESH_EMPTY)
		return "fetching";
	switch (si->cache.state) {
	case REFRESH_FRESH:
		/* Past refresh, not fetched again yet (idle: at next read). */
		return si->refresh_ms > 0 && si->cache.age_ms > si->refresh_ms ?
		    "due" : "fresh";
	case REFRESH_STALE:
		return "stale";
	case REFRESH_GONE:
		return "deleted";
	default:
		if (si->expired)
			return "expired";	/* dropped: past max_stale */
		return si->cache.last_err ? "failed" : "not-cached";
	}
}

static int64_t
now_realtime_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static void
metric(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* --- per-secret metrics ------------------------------------------------ */

/*
 * The states a configured secret is in for metrics, worst last: a
 * secret with files (as directory or prefix) is in the worst state of
 * the values it is made of.
 */
enum sstate { SS_NONE = -1, SS_FRESH, SS_DUE, SS_STALE, SS_EXPIRED,
    SS_FAILED, SS_N };
static const char *const sstate_names[SS_N] = { "fresh", "due", "stale",
    "expired", "failed" };

static enum sstate
secret_state(const struct broker_secret_info *si, int64_t refresh_ms)
{
	const struct cache_entry_info *e = &si->cache;

	if (!si->cached)
		return SS_NONE;
	switch (e->state) {
	case REFRESH_FRESH:
		/* Being fetched, or past its interval until the next read. */
		if (e->fetching || e->next_ms == 0 ||
		    (refresh_ms > 0 && e->age_ms >= refresh_ms))
			return SS_DUE;
		return SS_FRESH;
	case REFRESH_STALE:
	case REFRESH_GONE:
		return SS_STALE;
	default:
		/* No value: dropped past max_stale, or never had one. */
		if (e->last_err >= 0)
			return SS_NONE;
		return e->version[0] ? SS_EXPIRED : SS_FAILED;
	}
}

static pthread_once_t vkey_once = PTHREAD_ONCE_INIT;
static uint8_t vkey[32];
static bool vkey_ok;

/* Drawn once per daemon: version ids compare within one daemon's life. */
static void
vkey_init(void)
{
	vkey_ok = getrandom(vkey, sizeof(vkey), 0) == (ssize_t)sizeof(vkey);
}

/*
 * The version as a label: 12 hex digits of HMAC-SHA256(key, name NUL
 * version), so that a scraper sees when a version changes and never what
 * it is (a version string can carry more than a number). "" on failure.
 */
static void
version_id(const char *name, const char *version, char *out, size_t len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned char msg[sizeof(((struct broker_secret_info *)0)->name) +
	    BACKEND_VERSION_MAX];
	unsigned int n = 0;
	size_t nl = strlen(name) + 1, vl = strlen(version), i;

	out[0] = '\0';
	pthread_once(&vkey_once, vkey_init);
	if (!vkey_ok || len < 13 || nl + vl > sizeof(msg))
		return;
	memcpy(msg, name, nl);
	memcpy(msg + nl, version, vl);
	if (!HMAC(EVP_sha256(), vkey, sizeof(vkey), msg, nl + vl, mac, &n) ||
	    n < 6)
		return;
	for (i = 0; i < 6; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	OPENSSL_cleanse(mac, sizeof(mac));
}

/* The first entry at or after "name/" in the sorted snapshot. */
static size_t
children_start(const struct broker_snapshot *s, const char *name)
{
	size_t lo = 0, hi = s->nsecrets, mid, n = strlen(name);
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strncmp(s->secrets[mid].name, name, n);
		if (c == 0)
			c = strcmp(s->secrets[mid].name + n, "/") < 0 ? -1 : 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
is_child(const char *entry, const char *name)
{
	size_t n = strlen(name);

	return strncmp(entry, name, n) == 0 && entry[n] == '/';
}

struct secret_sum {
	enum sstate	state;
	size_t		behind;		/* holders of an older version */
	time_t		fetched;	/* the oldest value's; 0: none */
};

/* A configured secret and the files it is made of, together. */
static void
secret_sum(const struct broker_snapshot *s, size_t i, struct secret_sum *out)
{
	const struct broker_secret_info *si = &s->secrets[i], *ci;
	enum sstate st;
	size_t k;

	out->state = secret_state(si, si->refresh_ms);
	out->behind = si->nbehind;
	out->fetched = si->cache.fetched.tv_sec;
	for (k = children_start(s, si->name); k < s->nsecrets &&
	    is_child(s->secrets[k].name, si->name); k++) {
		ci = &s->secrets[k];
		if ((st = secret_state(ci, si->refresh_ms)) > out->state)
			out->state = st;
		out->behind += ci->nbehind;
		if (ci->cache.fetched.tv_sec && (!out->fetched ||
		    ci->cache.fetched.tv_sec < out->fetched))
			out->fetched = ci->cache.fetched.tv_sec;
	}
}

/*
 * One series per configured secret (and per state), never per file of a
 * prefix or per caller: the label sets are bounded by the configuration.
 */
static void
secret_metrics(const struct broker_snapshot *s, FILE *f)
{
	struct secret_sum sum;
	char vid[16];
	size_t i;
	int k;

	if (s->nsecrets == 0)
		return;
	metric(f, "secretsfs_secret_version_info", "gauge",
	    "The version served, as a keyed hash that changes with it.");
	for (i = 0; i < s->nsecrets; i++) {
		const struct broker_secret_info *si = &s->secrets[i];

		if (!si->configured || !si->cached || !si->cache.version[0])
			continue;
		version_id(si->name, si->cache.version, vid, sizeof(vid));
		if (!vid[0])
			continue;
		fputs("secretsfs_secret_version_info{secret=", f);
		label(f, si->name);
		fputs(",backend=", f);
		label(f, si->backend);
		fprintf(f, ",version_id=\"%s\"} 1\n", vid);
	}
	metric(f, "secretsfs_secret_fetched_timestamp_seconds", "gauge",
	    "When the value served was fetched (the oldest of its files).");
	for (i = 0; i < s->nsecrets; i++) {
		if (!s->secrets[i].configured)
			continue;
		secret_sum(s, i, &sum);
		if (!sum.fetched)
			continue;
		fputs("secretsfs_secret_fetched_timestamp_seconds{secret=", f);
		label(f, s->secrets[i].name);
		fprintf(f, "} %lld\n", (long long)sum.fetched);
	}
	metric(f, "secretsfs_secret_old_version_holders", "gauge",
	    "Callers with an opener still running that opened an older "
	    "version than the one served.");
	for (i = 0; i < s->nsecrets; i++) {
		if (!s->secrets[i].configured)
			continue;
		secret_sum(s, i, &sum);
		fputs("secretsfs_secret_old_version_holders{secret=", f);
		label(f, s->secrets[i].name);
		fprintf(f, "} %zu\n", sum.behind);
	}
	metric(f, "secretsfs_secret_state", "gauge",
	    "1 for the state the secret is in (none before its first read).");
	for (i = 0; i < s->nsecrets; i++) {
		if (!s->secrets[i].configured)
			continue;
		secret_sum(s, i, &sum);
		for (k = 0; k < SS_N; k++) {
			fputs("secretsfs_secret_state{secret=", f);
			label(f, s->secrets[i].name);
			fprintf(f, ",state=\"%s\"} %d\n", sstate_names[k],
			    (int)sum.state == k);
		}
	}
}

void
control_render_metrics(const struct broker_snapshot *s, FILE *f)
{
	const struct cache_stats *c = &s->cache;
	size_t i, k;

#define SIMPLE(name, type, help, fmt, val)				\
	do {								\
		metric(f, name, type, help);				\
		fprintf(f, name " " fmt "\n", val);			\
	} while (0)

	SIMPLE("secretsfs_up", "gauge",
	    "1 when the filesystem is mounted and served.", "%d",
	    s->mounted ? 1 : 0);
	SIMPLE("secretsfs_start_time_seconds", "gauge",
	    "When the daemon started, in seconds since the epoch.", "%lld",
	    (long long)s->started.tv_sec);
	SIMPLE("secretsfs_secrets", "gauge",
	    "Secrets in the configuration.", "%zu", s->n_secrets_configured);
	SIMPLE("secretsfs_reads_total", "counter",
	    "Opens of a secret that were allowed and served.", "%" PRIu64,
	    s->reads);
	SIMPLE("secretsfs_read_errors_total", "counter",
	    "Allowed opens that failed (backend or audit trail).", "%" PRIu64,
	    s->read_errors);
	SIMPLE("secretsfs_denials_total", "counter",
	    "Requests refused by the access rules.", "%" PRIu64, s->denials);
	SIMPLE("secretsfs_open_files", "gauge",
	    "Secret files open now.", "%ld", s->open_files);
	SIMPLE("secretsfs_cache_hits_total", "counter",
	    "Values served from the cache.", "%" PRIu64, c->hits);
	SIMPLE("secretsfs_cache_misses_total", "counter",
	    "Reads that fetched from a backend and waited.", "%" PRIu64,
	    c->misses);
	SIMPLE("secretsfs_cache_entries", "gauge",
	    "Values in the cache.", "%" PRIu64, c->entries);
	SIMPLE("secretsfs_cache_bytes", "gauge",
	    "Bytes of cached values.", "%" PRIu64, c->bytes);
	SIMPLE("secretsfs_cache_max_bytes", "gauge",
	    "Cap on the bytes of cached values.", "%" PRIu64,
	    s->cache_max_bytes);
	SIMPLE("secretsfs_cache_refreshes_total", "counter",
	    "Background refreshes ahead of expiry and retries.", "%" PRIu64,
	    c->refreshes);
	SIMPLE("secretsfs_cache_refresh_errors_total", "counter",
	    "Background refreshes that failed.", "%" PRIu64,
	    c->refresh_errors);
	SIMPLE("secretsfs_cache_stale_served_total", "counter",
	    "Reads served a stale (or deleted) value while the backend "
	    "failed.", "%" PRIu64, c->stale_served);
	SIMPLE("secretsfs_cache_stale_values", "gauge",
	    "Values served stale or deleted now.", "%" PRIu64, c->stale);
	SIMPLE("secretsfs_cache_expired_total", "counter",
	    "Values dropped after cache.max_stale.", "%" PRIu64, c->expired);
	SIMPLE("secretsfs_rotations_total", "counter",
	    "New versions seen.", "%" PRIu64, c->rotations);
	SIMPLE("secretsfs_rotation_signals_total", "counter",
	    "Signals sent by on_rotate actions.", "%" PRIu64, s->signals_sent);
	SIMPLE("secretsfs_locked_bytes", "gauge",
	    "Bytes of locked memory for secrets.", "%zu", s->locked_bytes);
	SIMPLE("secretsfs_locked_used_bytes", "gauge",
	    "Bytes of locked memory in use.", "%zu", s->used_bytes);
	SIMPLE("secretsfs_audit_records_total", "counter",
	    "Audit records written.", "%" PRIu64, s->audit.records);
	SIMPLE("secretsfs_audit_failures_total", "counter",
	    "Audit records that could not be written.", "%" PRIu64,
	    s->audit.failures);
	metric(f, "secretsfs_config_reloads_total", "counter",
	    "Configuration reloads, by outcome.");
	fprintf(f, "secretsfs_config_reloads_total{outcome=\"ok\"} %" PRIu64
	    "\n", s->reloads);
	fprintf(f, "secretsfs_config_reloads_total{outcome=\"error\"} %"
	    PRIu64 "\n", s->reload_errors);
#undef SIMPLE

	secret_metrics(s, f);
	if (s->nbackends == 0)
		return;
	metric(f, "secretsfs_backend_info", "gauge",
	    "One per backend, with its type.");
	for (i = 0; i < s->nbackends; i++) {
		fputs("secretsfs_backend_info{backend=", f);
		label(f, s->backends[i].name);
		fputs(",type=", f);
		label(f, s->backends[i].type);
		fputs("} 1\n", f);
	}
	metric(f, "secretsfs_backend_up", "gauge",
	    "1 when the backend's last answer came, 0 when it failed.");
	for (i = 0; i < s->nbackends; i++) {
		if (s->backends[i].reachable < 0)
			continue;
		fputs("secretsfs_backend_up{backend=", f);
		label(f, s->backends[i].name);
		fprintf(f, "} %d\n", s->backends[i].reachable);
	}
	metric(f, "secretsfs_backend_requests_total", "counter",
	    "Requests to the backend (fetches and listings).");
	for (i = 0; i < s->nbackends; i++) {
		fputs("secretsfs_backend_requests_total{backend=", f);
		label(f, s->backends[i].name);
		fprintf(f, "} %" PRIu64 "\n", s->backends[i].requests);
	}
	metric(f, "secretsfs_backend_errors_total", "counter",
	    "Requests to the backend that failed.");
	for (i = 0; i < s->nbackends; i++) {
		fputs("secretsfs_backend_errors_total{backend=", f);
		label(f, s->backends[i].name);
		fprintf(f, "} %" PRIu64 "\n", s->backends[i].errors);
	}
	metric(f, "secretsfs_backend_request_duration_seconds", "histogram",
	    "Time of a backend request, retries included.");
	for (i = 0; i < s->nbackends; i++) {
		const struct broker_backend_info *bi = &s->backends[i];
		uint64_t cum = 0;

		for (k = 0; k <= BROKER_LATENCY_BUCKETS; k++) {
			cum += bi->buckets[k];
			fputs("secretsfs_backend_request_duration_seconds_bucket"
			    "{backend=", f);
			label(f, bi->name);
			if (k < BROKER_LATENCY_BUCKETS)
				fprintf(f, ",le=\"%g\"} %" PRIu64 "\n",
				    broker_latency_bounds[k], cum);
			else
				fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
		}
		fputs("secretsfs_backend_request_duration_seconds_sum"
		    "{backend=", f);
		label(f, bi->name);
		fprintf(f, "} %.6f\n", bi->latency_sum);
		fputs("secretsfs_backend_request_duration_seconds_count"
		    "{backend=", f);
		label(f, bi->name);
		fprintf(f, "} %" PRIu64 "\n", cum);
	}
	metric(f, "secretsfs_backend_token_ttl_seconds", "gauge",
	    "Seconds left on the backend's token, when it says.");
	for (i = 0; i < s->nbackends; i++) {
		const struct broker_backend_info *bi = &s->backends[i];
		long long left;

		if (!bi->auth_known || bi->auth_ttl <= 0)
			continue;
		left = bi->auth_ttl - bi->auth_age_ms / 1000;
		fputs("secretsfs_backend_token_ttl_seconds{backend=", f);
		label(f, bi->name);
		fprintf(f, "} %lld\n", left > 0 ? left : 0);
	}
}

static void
status_json(const struct broker_snapshot *s, FILE *f)
{
	size_t i, j, k;

	fprintf(f, "{\"pid\":%d,\"config\":", (int)s->pid);
	json_str(f, s->config_file);
	fputs(",\"mountpoint\":", f);
	json_str(f, s->mountpoint);
	fprintf(f, ",\"mounted\":%s,\"started\":", s->mounted ? "true" :
	    "false");
	json_time(f, &s->started);
	fputs(",\"loaded\":", f);
	json_time(f, &s->loaded);
	fprintf(f, ",\"uptime_s\":%lld,\"max_stale_s\":%lld",
	    (long long)(now_realtime_s() - s->started.tv_sec),
	    (long long)(s->max_stale_ms / 1000));
	fprintf(f, ",\"reloads\":{\"ok\":%" PRIu64 ",\"error\":%" PRIu64 "}",
	    s->reloads, s->reload_errors);
	fprintf(f, ",\"memory\":{\"locked_bytes\":%zu,\"used_bytes\":%zu,"
	    "\"backing\":", s->locked_bytes, s->used_bytes);
	json_str(f, s->backing);
	fprintf(f, ",\"cache_bytes\":%" PRIu64 ",\"cache_max_bytes\":%" PRIu64
	    ",\"cache_values\":%" PRIu64 "}", s->cache.bytes,
	    s->cache_max_bytes, s->cache.entries);
	fprintf(f, ",\"readers\":{\"open_files\":%ld}", s->open_files);
	/* The head of the chain: what `audit verify -c` checks the files by. */
	if (s->audit_on) {
		fprintf(f, ",\"audit\":{\"seq\":%" PRIu64 ",\"mac\":",
		    s->audit.seq);
		json_str(f, s->audit.seq ? s->audit.mac : NULL);
		fprintf(f, ",\"records\":%" PRIu64 ",\"failures\":%" PRIu64 "}",
		    s->audit.records, s->audit.failures);
	} else
		fputs(",\"audit\":null", f);
	fputs(",\"backends\":[", f);
	for (i = 0; i < s->nbackends; i++) {
		const struct broker_backend_info *bi = &s->backends[i];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		json_str(f, bi->name);
		fputs(",\"type\":", f);
		json_str(f, bi->type);
		fprintf(f, ",\"reachable\":%s,\"requests\":%" PRIu64
		    ",\"errors\":%" PRIu64 ",\"failing_s\":%lld,\"last_error\":",
		    bi->reachable < 0 ? "null" : bi->reachable ? "true" : "false",
		    bi->requests, bi->errors, (long long)(bi->failing_ms / 1000));
		json_str(f, bi->errors ? bi->last_error : NULL);
		fputs(",\"auth\":", f);
		if (!bi->auth_known)
			fputs("null", f);
		else {
			fputs("{\"method\":", f);
			json_str(f, bi->auth_method);
			fputs(",\"last\":", f);
			json_str(f, bi->auth_action);
			fprintf(f, ",\"ok\":%s,\"ttl_s\":%lld,\"expires_in_s\":%lld,"
			    "\"age_s\":%lld}", bi->auth_ok ? "true" : "false",
			    bi->auth_ttl, bi->auth_ttl > 0 ? bi->auth_ttl -
			    bi->auth_age_ms / 1000 : 0,
			    (long long)(bi->auth_age_ms / 1000));
		}
		fputc('}', f);
	}
	fputs("],\"secrets\":[", f);
	for (i = 0; i < s->nsecrets; i++) {
		const struct broker_secret_info *si = &s->secrets[i];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		json_str(f, si->name);
		fputs(",\"state\":", f);
		json_str(f, state_name(si));
		fputs(",\"version\":", f);
		json_str(f, si->cache.version[0] ? si->cache.version : NULL);
		fputs(",\"changed\":", f);
		json_time(f, &si->cache.changed);
		fputs(",\"fetched\":", f);
		json_time(f, &si->cache.fetched);
		fprintf(f, ",\"age_ms\":%lld,\"stale_ms\":%lld,\"next_refresh_ms\":"
		    "%lld,\"failures\":%u,\"bytes\":%zu,\"file\":%s,\"on_rotate\":",
		    (long long)si->cache.age_ms, (long long)si->cache.stale_ms,
		    (long long)si->cache.next_ms, si->cache.failures,
		    si->cache.len, si->configured ? "false" : "true");
		json_str(f, si->on_rotate);
		fputs(",\"rotated_at\":", f);
		json_time(f, &si->rotated_at);
		fputs(",\"previous_version\":", f);
		json_str(f, si->previous[0] ? si->previous : NULL);
		fputs(",\"last_error\":", f);
		json_str(f, si->last_error[0] ? si->last_error : NULL);
		fprintf(f, ",\"holders\":%zu,\"not_reopened\":[", si->holders);
		for (j = 0; j < si->nbehind; j++) {
			const struct broker_holder_info *h = &si->behind[j];

			fputs(j ? ",{" : "{", f);
			if (h->container) {
				fputs("\"kind\":\"container\",\"id\":", f);
				json_str(f, h->container_id);
				fputs(",\"name\":", f);
				json_str(f, h->container_name[0] ?
				    h->container_name : NULL);
				fputs(",\"runtime\":", f);
				json_str(f, h->runtime);
				if (h->k8s_pod[0]) {
					fputs(",\"k8s\":{\"namespace\":", f);
					json_str(f, h->k8s_namespace[0] ?
					    h->k8s_namespace : NULL);
					fputs(",\"pod\":", f);
					json_str(f, h->k8s_pod);
					fputs(",\"service_account\":", f);
					json_str(f, h->k8s_service_account[0] ?
					    h->k8s_service_account : NULL);
					fputs(",\"container\":", f);
					json_str(f, h->k8s_container[0] ?
					    h->k8s_container : NULL);
					fputc('}', f);
				}
				fputc(',', f);
			} else
				fputs("\"kind\":\"process\",", f);
			fprintf(f, "\"pid\":%d,\"comm\":", (int)h->pid);
			json_str(f, h->comm);
			fprintf(f, ",\"uid\":%u,\"version\":", (unsigned)h->uid);
			json_str(f, h->version);
			fputs(",\"last_open\":", f);
			json_time(f, &h->last_open);
			fputs(",\"pids\":[", f);
			for (k = 0; k < h->npids; k++)
				fprintf(f, k ? ",%d" : "%d", (int)h->pids[k]);
			fputs("]}", f);
		}
		fputs("]}", f);
	}
	fputs("]}\n", f);
}

static void
status_text(const struct broker_snapshot *s, FILE *f)
{
	char t[64], a[32], b[32];
	size_t i, j;

	human_ms(a, sizeof(a), (now_realtime_s() - s->started.tv_sec) * 1000);
	fprintf(f, "secretsfs pid %d, %s %s, up %s\n", (int)s->pid,
	    s->mounted ? "serving" : "NOT mounted on", s->mountpoint, a);
	rfc3339(t, sizeof(t), &s->loaded);
	fprintf(f, "config %s, loaded %s (reloads: %" PRIu64 " ok, %" PRIu64
	    " failed)\n", s->config_file, t, s->reloads, s->reload_errors);
	fprintf(f, "memory: %zu bytes locked (%s), %zu in use; cache: %"
	    PRIu64 " of %" PRIu64 " bytes in %" PRIu64 " values\n",
	    s->locked_bytes, s->backing, s->used_bytes, s->cache.bytes,
	    s->cache_max_bytes, s->cache.entries);
	fprintf(f, "readers: %ld open files\n", s->open_files);
	if (s->audit_on)
		fprintf(f, "audit: last record seq %" PRIu64 " mac %s; %" PRIu64
		    " written, %" PRIu64 " failed since start\n", s->audit.seq,
		    s->audit.seq ? s->audit.mac : "-", s->audit.records,
		    s->audit.failures);
	else
		fprintf(f, "audit: off\n");

	fprintf(f, "\n%-16s %-6s %-24s %9s %7s  %s\n", "BACKEND", "TYPE",
	    "STATE", "REQUESTS", "ERRORS", "AUTH");
	for (i = 0; i < s->nbackends; i++) {
		const struct broker_backend_info *bi = &s->backends[i];
		char st[64], auth[160];

		if (bi->reachable < 0)
			snprintf(st, sizeof(st), "not asked yet");
		else if (bi->reachable)
			snprintf(st, sizeof(st), "reachable");
		else {
			human_ms(a, sizeof(a), bi->failing_ms);
			snprintf(st, sizeof(st), "failing for %s", a);
		}
		if (!bi->auth_known)
			snprintf(auth, sizeof(auth), "-");
		else {
			human_ms(a, sizeof(a), bi->auth_age_ms);
			human_ms(b, sizeof(b), bi->auth_ttl > 0 ?
			    (bi->auth_ttl * 1000 - bi->auth_age_ms) : -1);
			snprintf(auth, sizeof(auth), "%s %s %s %s ago, token "
			    "expires in %s", bi->auth_method, bi->auth_action,
			    bi->auth_ok ? "ok" : "FAILED", a, b);
		}
		fprintf(f, "%-16s %-6s %-24s %9" PRIu64 " %7" PRIu64 "  %s\n",
		    bi->name, bi->type, st, bi->requests, bi->errors, auth);
		if (bi->reachable == 0)
			fprintf(f, "%-16s last error: %s\n", "", bi->last_error);
	}

	fprintf(f, "\n%-32s %-9s %8s %8s  %-20s  %s\n", "SECRET", "STATE",
	    "AGE", "STALE", "CHANGED", "VERSION");
	for (i = 0; i < s->nsecrets; i++) {
		const struct broker_secret_info *si = &s->secrets[i];

		human_ms(a, sizeof(a), si->cache.age_ms);
		human_ms(b, sizeof(b), si->cache.stale_ms ? si->cache.stale_ms :
		    -1);
		rfc3339(t, sizeof(t), &si->cache.changed);
		fprintf(f, "%-32s %-9s %8s %8s  %-20s  %s\n", si->name,
		    state_name(si), a, b, t,
		    si->cache.version[0] ? si->cache.version : "-");
		if (si->last_error[0])
			fprintf(f, "  last error: %s\n", si->last_error);
		if (si->nbehind) {
			rfc3339(t, sizeof(t), &si->rotated_at);
			fprintf(f, "  not reopened since version %s (%s):\n",
			    si->cache.version, t);
		}
		for (j = 0; j < si->nbehind; j++) {
			const struct broker_holder_info *h = &si->behind[j];

			rfc3339(t, sizeof(t), &h->last_open);
			if (h->container && h->k8s_pod[0])
				fprintf(f, "    pod %s/%s (service account %s, "
				    "container %s), container %.12s (%s), "
				    "pid %d (%s), has version %s, opened %s\n",
				    h->k8s_namespace, h->k8s_pod,
				    h->k8s_service_account, h->k8s_container,
				    h->container_id, h->runtime, (int)h->pid,
				    h->comm, h->version, t);
			else if (h->container)
				fprintf(f, "    container %.12s%s%s%s (%s), pid %d "
				    "(%s), has version %s, opened %s\n",
				    h->container_id, h->container_name[0] ?
				    " \"" : "", h->container_name,
				    h->container_name[0] ? "\"" : "", h->runtime,
				    (int)h->pid, h->comm, h->version, t);
			else
				fprintf(f, "    process %d (%s), uid %u, has "
				    "version %s, opened %s\n", (int)h->pid,
				    h->comm, (unsigned)h->uid, h->version, t);
		}
	}
}

void
control_render_status(const struct broker_snapshot *s, bool json, FILE *f)
{
	if (json)
		status_json(s, f);
	else
		status_text(s, f);
}
