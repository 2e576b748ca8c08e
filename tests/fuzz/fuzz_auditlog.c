/*
 * libFuzzer harness for `secretsfs audit verify` and `audit show`: the
 * input is one to four audit files (split at form feeds, which a record
 * never holds raw), verified under a fixed key. The seeds are real trails
 * written by audit.c under that key (see seeds/SOURCES.md), so the fuzzer
 * starts from chains that verify and works on breaking them.
 *
 * auditlog reads files by name, so each one is a memfd reached through
 * /proc/self/fd: no disk I/O and nothing left behind.
 */
#include <sys/mman.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <secretsfs/audit.h>
#include <secretsfs/auditlog.h>

#include "fuzz.h"

/* The key the seeds were written with; also in seeds/SOURCES.md. */
#define FUZZ_AUDIT_KEY	"secretsfs-fuzz-audit-key-0123456789abcdef"
#define FILES_MAX	4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct audit_key *key;
static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_secmem_init();
	key = audit_key_new(FUZZ_AUDIT_KEY, strlen(FUZZ_AUDIT_KEY));
	devnull = fopen("/dev/null", "w");
	if (key == NULL || devnull == NULL)
		abort();
	return 0;
}

static int
make_file(const uint8_t *p, size_t n, char **path)
{
	int fd;

	if ((fd = memfd_create("fuzz-audit", MFD_CLOEXEC)) < 0)
		abort();
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			abort();
		p += w;
		n -= (size_t)w;
	}
	if (asprintf(path, "/proc/self/fd/%d", fd) < 0)
		abort();
	return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auditlog_filter f = { "db_*", "payment*",
	    "2026-11-22T13:00:00Z" };
	struct auditlog_result res;
	char *files[FILES_MAX], *s;
	int fds[FILES_MAX], n = 0, i, r;
	const uint8_t *p = data, *end = data + size, *ff;
	uint64_t lines = 0;
	int64_t us;

	FUZZ_ARENA_BEGIN();
	do {
		ff = memchr(p, '\f', (size_t)(end - p));
		if (ff == NULL || n == FILES_MAX - 1)
			ff = end;
		fds[n] = make_file(p, (size_t)(ff - p), &files[n]);
		n++;
		p = ff + 1;
	} while (ff < end);
	for (i = 0; i < (int)size; i++)
		lines += data[i] == '\n';

	r = auditlog_verify(key, files, n, NULL, devnull, &res);
	if (r != AUDITLOG_OK && r != AUDITLOG_BAD && r != AUDITLOG_UNCONFIRMED &&
	    r != -ENOMEM)
		abort();
	if (!memchr(res.detail, '\0', sizeof(res.detail)))
		abort();
	if (r == AUDITLOG_OK || r == AUDITLOG_UNCONFIRMED) {
		/* Clean: every line of every file is a good record. */
		if (res.kind != AUDITLOG_CLEAN || res.records != lines ||
		    (res.records > 0 && res.last_seq < res.first_seq))
			abort();
	} else if (r == AUDITLOG_BAD) {
		/* Line 0 only for a trail without a single record. */
		if (res.kind == AUDITLOG_CLEAN || res.file == NULL ||
		    (res.line < 1 && res.records != 0) ||
		    res.records >= lines + 1 ||
		    strcmp(auditlog_bad_name(res.kind), "unknown") == 0)
			abort();
	}

	(void)auditlog_show(files, n, NULL, false, devnull);
	(void)auditlog_show(files, n, &f, true, devnull);

	if (size < 48) {
		s = fuzz_strndup(data, size);
		(void)auditlog_parse_since(s, 1795355172000000LL, &us);
		free(s);
	}

	for (i = 0; i < n; i++) {
		close(fds[i]);
		free(files[i]);
	}
	FUZZ_ARENA_END();
	return 0;
}
