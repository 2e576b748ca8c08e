/*
 * The control socket: a parser that trusts nothing, a small server (one
 * accept thread, one short-lived thread per connection), the renderers
 * of status and metrics, and the CLI client.
 *
 * Nothing here ever sees a secret value: status and metrics are built
 * from a broker snapshot of names, versions, times and counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
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

#include <jansson.h>

#include <secretsfs/config.h>
#include <secretsfs/control.h>
#include <secretsfs/log.h>

#define CONN_MAX		8	/* connections served at once */
#define IO_TIMEOUT_S		5	/* for a request line and an answer */
#define CLIENT_TIMEOUT_S	120	/* a refresh may wait on a slow backend */
#define ANSWER_MAX		(64u << 20)

/* ------------------------------------------------------------------ */
/* The parser.                                                        */

static bool
is_word(const char *buf, size_t len, const char *w)
{
	return len == strlen(w) && memcmp(buf, w, len) == 0;
}

int
control_parse(const char *buf, size_t len, struct control_cmd *out)
{
	const char *sp, *arg = NULL;
	size_t vlen, alen = 0, i;

	memset(out, 0, sizeof(*out));
	if (len > CONTROL_LINE_MAX - 1)
		return -E2BIG;
	for (i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			return -EINVAL;
	sp = memchr(buf, ' ', len);
	vlen = sp ? (size_t)(sp - buf) : len;
	if (sp) {
		arg = sp + 1;
		alen = len - vlen - 1;
		/* Exactly one separator, and something after it. */
		if (alen == 0 || arg[0] == ' ')
			return -EINVAL;
	}
	if (is_word(buf, vlen, "status")) {
		out->verb = CONTROL_STATUS;
		if (arg && !is_word(arg, alen, "json"))
			return -EINVAL;
		out->json = arg != NULL;
		return 0;
	}
	if (is_word(buf, vlen, "metrics") || is_word(buf, vlen, "health")) {
		out->verb = buf[0] == 'm' ? CONTROL_METRICS : CONTROL_HEALTH;
		return arg ? -EINVAL : 0;
	}
	if (is_word(buf, vlen, "flush"))
		out->verb = CONTROL_FLUSH;
	else if (is_word(buf, vlen, "refresh"))
		out->verb = CONTROL_REFRESH;
	else
		return -EINVAL;
	if (!arg)
		return out->verb == CONTROL_FLUSH ? 0 : -EINVAL;
	/* A secret name as the config allows it: a file name. */
	if (alen > CONTROL_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(arg, '/', alen) || is_word(arg, alen, ".") ||
	    is_word(arg, alen, ".."))
		return -EINVAL;
	memcpy(out->name, arg, alen);
	out->name[alen] = '\0';
	out->has_name = true;
	return 0;
}

int
control_socket_path(const char *configured, const char *mountpoint,
    char *buf, size_t len)
{
	size_t n, max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int w;

	if (configured)
		w = snprintf(buf, len, "%s", configured);
	else if (mountpoint && mountpoint[0] == '/' && mountpoint[1]) {
		n = strlen(mountpoint);
		while (n > 1 && mountpoint[n - 1] == '/')
			n--;
		w = snprintf(buf, len, "%.*s.sock", (int)n, mountpoint);
	} else
		w = snprintf(buf, len, "%s", CONTROL_DEFAULT_SOCKET);
	if (w < 0 || (size_t)w >= len || (size_t)w >= max)
		return -ENAMETOOLONG;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Rendering.                                                         */

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
		return "fresh";
	case REFRESH_STALE:
		return "stale";
	case REFRESH_GONE:
		return "deleted";
	default:
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
		if (si->nbehind) {
			rfc3339(t, sizeof(t), &si->rotated_at);
			fprintf(f, "  not reopened since version %s (%s):\n",
			    si->cache.version, t);
		}
		for (j = 0; j < si->nbehind; j++) {
			const struct broker_holder_info *h = &si->behind[j];

			rfc3339(t, sizeof(t), &h->last_open);
			if (h->container)
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

int
control_execute(struct broker *b, const struct control_cmd *cmd, FILE *out,
    char *why, size_t whylen)
{
	struct broker_snapshot snap;
	char version[BACKEND_VERSION_MAX];
	int r;

	switch (cmd->verb) {
	case CONTROL_STATUS:
	case CONTROL_METRICS:
		if ((r = broker_snapshot(b, cmd->verb == CONTROL_STATUS,
		    &snap)) < 0) {
			snprintf(why, whylen, "%s", strerror(-r));
			return r;
		}
		if (cmd->verb == CONTROL_STATUS)
			control_render_status(&snap, cmd->json, out);
		else
			control_render_metrics(&snap, out);
		broker_snapshot_free(&snap);
		return 0;
	case CONTROL_HEALTH:
		if ((r = broker_health(b, why, whylen)) < 0)
			return r;
		fprintf(out, "healthy: %s\n", why);
		return 0;
	case CONTROL_FLUSH:
		if ((r = broker_flush(b, cmd->has_name ? cmd->name : NULL)) < 0) {
			snprintf(why, whylen, "no secret \"%s\" in the "
			    "configuration", cmd->name);
			return r;
		}
		fprintf(out, "flushed %s\n", cmd->has_name ? cmd->name :
		    "every secret");
		return 0;
	case CONTROL_REFRESH: {
		struct broker_view *v = broker_acquire(b);
		bool known = broker_view_lookup(v, cmd->name) >= 0;

		broker_release(v);
		if (!known) {
			snprintf(why, whylen, "no secret \"%s\" in the "
			    "configuration", cmd->name);
			return -ENOENT;
		}
		if ((r = broker_refresh(b, cmd->name, version,
		    sizeof(version))) < 0) {
			snprintf(why, whylen, "%s: %s", cmd->name, strerror(-r));
			return r;
		}
		fprintf(out, "refreshed %s: version %s\n", cmd->name, version);
		return 0;
	}
	}
	snprintf(why, whylen, "unknown command");
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* The server.                                                        */

struct control {
	struct broker	*b;
	char		 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int		 fd;
	int		 wake[2];
	dev_t		 dev;
	ino_t		 ino;
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 idle;
	int		 active;
};

struct conn {
	struct control	*c;
	int		 fd;
};

static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		if ((n = send(fd, buf, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
answer_error(int fd, const char *msg)
{
	char buf[512];
	int n;

	n = snprintf(buf, sizeof(buf), "error %s\n", msg);
	if (n > 0)
		write_all(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
}

static void
serve(struct control *c, int fd)
{
	struct control_cmd cmd;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char line[CONTROL_LINE_MAX], why[512] = "", *body = NULL;
	size_t have = 0, blen = 0;
	FILE *out;
	ssize_t n;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warnx("control: refused a connection from uid %d pid %d",
		    clen == sizeof(cred) ? (int)cred.uid : -1,
		    clen == sizeof(cred) ? (int)cred.pid : -1);
		answer_error(fd, "permission denied: root only");
		return;
	}
	/* One line; a client that sends no newline ends it by closing. */
	while (have < sizeof(line)) {
		n = recv(fd, line + have, sizeof(line) - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (memchr(line + have - n, '\n', (size_t)n))
			break;
	}
	if (have && memchr(line, '\n', have))
		have = (size_t)((char *)memchr(line, '\n', have) - line);
	else if (have == sizeof(line)) {
		answer_error(fd, "request too long");
		return;
	}
	if ((r = control_parse(line, have, &cmd)) < 0) {
		answer_error(fd, r == -ENAMETOOLONG ? "name too long" :
		    r == -E2BIG ? "request too long" : "unknown request; "
		    "expected status [json], metrics, health, flush [NAME] or "
		    "refresh NAME");
		return;
	}
	if (!(out = open_memstream(&body, &blen))) {
		answer_error(fd, strerror(errno));
		return;
	}
	fputs("ok\n", out);
	r = control_execute(c->b, &cmd, out, why, sizeof(why));
	fclose(out);
	if (r < 0)
		answer_error(fd, why);
	else
		write_all(fd, body, blen);
	free(body);
}

static void *
conn_thread(void *arg)
{
	struct conn *cn = arg;
	struct control *c = cn->c;

	serve(c, cn->fd);
	close(cn->fd);
	free(cn);
	pthread_mutex_lock(&c->lock);
	if (--c->active == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void *
accept_thread(void *arg)
{
	struct control *c = arg;
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	struct pollfd pfd[2];
	struct conn *cn;
	pthread_attr_t attr;
	pthread_t t;
	int fd;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		pfd[0] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = c->wake[0], .events = POLLIN };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		if ((fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		pthread_mutex_lock(&c->lock);
		if (c->active >= CONN_MAX || !(cn = malloc(sizeof(*cn)))) {
			pthread_mutex_unlock(&c->lock);
			answer_error(fd, "busy; try again");
			close(fd);
			continue;
		}
		cn->c = c;
		cn->fd = fd;
		c->active++;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&t, &attr, conn_thread, cn) != 0) {
			answer_error(fd, "cannot start a thread");
			close(fd);
			free(cn);
			pthread_mutex_lock(&c->lock);
			c->active--;
			pthread_mutex_unlock(&c->lock);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* Is a daemon answering on path? */
static bool
answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return r == 0;
}

int
control_open(const char *path, struct broker *b, struct control **out,
    char *errbuf, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c;
	struct stat st;
	sigset_t all, old;
	int r;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(errbuf, errlen, "%s: path too long for a socket", path);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(errbuf, errlen, "%s exists and is not a socket; "
			    "not replacing it", path);
			return -EEXIST;
		}
		if (answers(path)) {
			snprintf(errbuf, errlen, "another daemon answers on %s",
			    path);
			return -EADDRINUSE;
		}
		/* Left by a daemon that died. */
		unlink(path);
	}
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	c->b = b;
	c->fd = c->wake[0] = c->wake[1] = -1;
	snprintf(c->path, sizeof(c->path), "%s", path);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	/*
	 * 0600 at once; a client that connected in the moment before is
	 * still checked with SO_PEERCRED.
	 */
	if (chmod(path, 0600) != 0 || listen(c->fd, 16) != 0 ||
	    stat(path, &st) != 0 || pipe2(c->wake, O_CLOEXEC) != 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
		unlink(path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&c->thread, NULL, accept_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot start a thread: %s",
		    strerror(-r));
		unlink(path);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (c->fd >= 0)
		close(c->fd);
	if (c->wake[0] >= 0) {
		close(c->wake[0]);
		close(c->wake[1]);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
	return r;
}

void
control_close(struct control *c)
{
	struct stat st;

	if (!c)
		return;
	(void)!write(c->wake[1], "x", 1);
	pthread_join(c->thread, NULL);
	pthread_mutex_lock(&c->lock);
	while (c->active > 0)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	/* Only our own socket: a successor may already have replaced it. */
	if (stat(c->path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino)
		unlink(c->path);
	close(c->fd);
	close(c->wake[0]);
	close(c->wake[1]);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
}

/* ------------------------------------------------------------------ */
/* The CLI.                                                           */

static const char *const verbs[] = { "status", "metrics", "health", "flush",
	"refresh" };

bool
control_is_command(const char *verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i]) == 0)
			return true;
	return false;
}

static void
cli_usage(const char *verb)
{
	fprintf(stderr, "usage: secretsfs %s [-c CONFIG | -s SOCKET]%s\n", verb,
	    strcmp(verb, "status") == 0 ? " [--json]" :
	    strcmp(verb, "flush") == 0 ? " [NAME]" :
	    strcmp(verb, "refresh") == 0 ? " NAME" : "");
}

/* Send line, read the whole answer into *buf (NUL-terminated). */
static int
request(const char *path, const char *line, char **buf, size_t *len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };
	size_t cap = 4096;
	char *grown;
	ssize_t n;
	int fd, r;

	*buf = NULL;
	*len = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = -errno;
		close(fd);
		return r;
	}
	write_all(fd, line, strlen(line));
	shutdown(fd, SHUT_WR);
	if (!(*buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (*len + 1 >= cap) {
			if (cap >= ANSWER_MAX ||
			    !(grown = realloc(*buf, cap * 2))) {
				r = -EFBIG;
				goto fail;
			}
			*buf = grown;
			cap *= 2;
		}
		n = recv(fd, *buf + *len, cap - *len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	(*buf)[*len] = '\0';
	close(fd);
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	close(fd);
	return r;
}

int
control_audit_head(const char *path, uint64_t *seq, char *mac, size_t maclen,
    char *why, size_t whylen)
{
	json_t *doc, *au, *jseq, *jmac;
	const char *m;
	char *ans;
	size_t len;
	int r;

	if ((r = request(path, "status json\n", &ans, &len)) < 0) {
		snprintf(why, whylen, "cannot reach the daemon on %s: %s", path,
		    strerror(-r));
		return r;
	}
	doc = strncmp(ans, "ok\n", 3) == 0 ?
	    json_loadb(ans + 3, len - 3, 0, NULL) : NULL;
	free(ans);
	if (!doc) {
		snprintf(why, whylen, "the daemon on %s gave no status", path);
		return -EPROTO;
	}
	au = json_object_get(doc, "audit");
	jseq = json_object_get(au, "seq");
	jmac = json_object_get(au, "mac");
	m = json_string_value(jmac);
	r = 0;
	if (json_is_null(au)) {
		snprintf(why, whylen, "the daemon on %s keeps no audit trail",
		    path);
		r = -ENODATA;
	} else if (!json_is_integer(jseq) || json_integer_value(jseq) < 1 ||
	    !m || strlen(m) != 64 || strspn(m, "0123456789abcdef") != 64 ||
	    maclen < 65) {
		snprintf(why, whylen, "the daemon on %s gave no audit head "
		    "(an older secretsfs?)", path);
		r = -EPROTO;
	} else {
		*seq = (uint64_t)json_integer_value(jseq);
		snprintf(mac, maclen, "%s", m);
	}
	json_decref(doc);
	return r;
}

int
control_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "socket",	required_argument,	NULL, 's' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = argv[0], *file = NULL, *sock = NULL, *name = NULL;
	char path[256], line[CONTROL_LINE_MAX + 1], *ans, *nl;
	struct control_cmd cmd;
	struct cfg_err err;
	struct config *cfg;
	bool json = false;
	size_t len;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			cli_usage(verb);
			return 0;
		default:
			cli_usage(verb);
			return 2;
		}
	}
	if (optind < argc)
		name = argv[optind++];
	if ((file && sock) || optind != argc ||
	    (json && strcmp(verb, "status") != 0)) {
		cli_usage(verb);
		return 2;
	}
	snprintf(line, sizeof(line), "%s%s%s", verb, name ? " " : json ?
	    " json" : "", name ? name : "");
	if (control_parse(line, strlen(line), &cmd) < 0) {
		cli_usage(verb);
		return 2;
	}
	if (sock)
		snprintf(path, sizeof(path), "%s", sock);
	else if (file) {
		if (config_load(file, &cfg, &err) < 0) {
			char msg[1024];

			cfg_err_format(&err, file, msg, sizeof(msg));
			fprintf(stderr, "secretsfs: %s\n", msg);
			return 1;
		}
		r = control_socket_path(cfg->control_socket, cfg->mountpoint,
		    path, sizeof(path));
		config_free(cfg);
		if (r < 0) {
			fprintf(stderr, "secretsfs: control socket path too long\n");
			return 1;
		}
	} else
		snprintf(path, sizeof(path), "%s", CONTROL_DEFAULT_SOCKET);
	strcat(line, "\n");
	if ((r = request(path, line, &ans, &len)) < 0) {
		fprintf(stderr, "secretsfs: %s: cannot reach the daemon on %s: "
		    "%s\n", verb, path, strerror(-r));
		return 1;
	}
	if (strncmp(ans, "ok\n", 3) == 0) {
		fwrite(ans + 3, 1, len - 3, stdout);
		free(ans);
		return 0;
	}
	if ((nl = strchr(ans, '\n')))
		*nl = '\0';
	fprintf(stderr, "secretsfs: %s: %s\n", verb,
	    strncmp(ans, "error ", 6) == 0 ? ans + 6 : "malformed answer");
	free(ans);
	return 1;
}
