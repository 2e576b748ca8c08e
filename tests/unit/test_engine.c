/*
 * engine: inspect bodies from Docker and Podman, and engine_enrich() against
 * a small Engine API stand-in on a Unix socket (404, 500, timeout, huge
 * body, wrong id, caching of answers and of failures).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/engine.h>
#include <secretsfs/http.h>
#include <secretsfs/secmem.h>

#define ID_DOCKER "f2b1c7a3e6d94c8fa0b5e1d27c3a9b4f6e8d0c1a2b3c4d5e6f708192a3b4c5d6"
#define ID_PODMAN "4e7c64d53e2ddc0b8d6ea6da486f8e87d3e29c148e56e64ac049ba30163d78be"
#define ID_LIBPOD "9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565"
#define ID_404    "d9fbcf0903fd060c4a665a3e65479ee07a31a6267ba8bc4b2aa2570431b0b6a3"
#define ID_500    "ea5b19e5a76b9fe00c14584a0770352a190d82f0522c6f8dd2ef221a075524b8"
#define ID_SLOW   "974bc0d2daa8f12746b5c86f726a0a901546837efb08bda4fba50cd4fb52d4a2"
#define ID_HUGE   "60dbad47d63117d98f6cdfc66e319ee1dc20ef6dbafae3cda7920d7a2c2ec4cd"
#define ID_WRONG  "104c997c3b94272f24ec155a464167cde8223d5fbc4f3d2d1f6c6e7ef07b5911"

/*
 * Shaped like Docker Engine 24's `GET /containers/<id>/json` for a Compose
 * service, cut to the fields around the ones we read (Env included: it must
 * not leak into the caller).
 */
static const char docker_body[] =
    "{\"Id\":\"" ID_DOCKER "\","
    "\"Created\":\"2024-05-02T09:14:07.412338562Z\",\"Path\":\"docker-entrypoint.sh\","
    "\"Args\":[\"node\",\"server.js\"],"
    "\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,"
    "\"Restarting\":false,\"OOMKilled\":false,\"Dead\":false,\"Pid\":48213,"
    "\"ExitCode\":0,\"Error\":\"\",\"StartedAt\":\"2024-05-02T09:14:08.01Z\","
    "\"FinishedAt\":\"0001-01-01T00:00:00Z\"},"
    "\"Image\":\"sha256:5f1ac3d3c0bd6b7c8f5d1b1e4b76c2fae86f1b9a2c3d4e5f60718293a4b5c6d7\","
    "\"ResolvConfPath\":\"/var/lib/docker/containers/" ID_DOCKER "/resolv.conf\","
    "\"HostnamePath\":\"/var/lib/docker/containers/" ID_DOCKER "/hostname\","
    "\"LogPath\":\"/var/lib/docker/containers/" ID_DOCKER "/" ID_DOCKER "-json.log\","
    "\"Name\":\"/shop-payment-api-1\",\"RestartCount\":0,\"Driver\":\"overlay2\","
    "\"Platform\":\"linux\",\"MountLabel\":\"\",\"ProcessLabel\":\"\","
    "\"AppArmorProfile\":\"docker-default\",\"ExecIDs\":null,"
    "\"HostConfig\":{\"Binds\":[\"/run/secretsfs:/run/secrets:ro\"],"
    "\"NetworkMode\":\"shop_default\",\"RestartPolicy\":{\"Name\":\"unless-stopped\","
    "\"MaximumRetryCount\":0},\"CgroupnsMode\":\"private\"},"
    "\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/run/secretsfs\","
    "\"Destination\":\"/run/secrets\",\"Mode\":\"ro\",\"RW\":false,"
    "\"Propagation\":\"rprivate\"}],"
    "\"Config\":{\"Hostname\":\"f2b1c7a3e6d9\",\"Domainname\":\"\",\"User\":\"node\","
    "\"AttachStdin\":false,\"AttachStdout\":true,\"AttachStderr\":true,"
    "\"Tty\":false,\"OpenStdin\":false,\"StdinOnce\":false,"
    "\"Env\":[\"DB_PASSWORD=env-var-value-we-must-not-keep\","
    "\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\","
    "\"NODE_VERSION=20.12.2\"],"
    "\"Cmd\":[\"node\",\"server.js\"],"
    "\"Image\":\"registry.example.com/shop/payment-api:2.3.1\",\"Volumes\":null,"
    "\"WorkingDir\":\"/app\",\"Entrypoint\":[\"docker-entrypoint.sh\"],"
    "\"OnBuild\":null,"
    "\"Labels\":{\"com.docker.compose.config-hash\":"
    "\"9b0c2d0a6e1f4c3b8a7d6e5f4c3b2a19080706050403020100ffeeddccbbaa99\","
    "\"com.docker.compose.container-number\":\"1\","
    "\"com.docker.compose.oneoff\":\"False\","
    "\"com.docker.compose.project\":\"shop\","
    "\"com.docker.compose.service\":\"payment-api\","
    "\"com.docker.compose.version\":\"2.27.0\","
    "\"org.opencontainers.image.source\":\"https://git.example.com/shop/payment-api\","
    "\"pci.scope\":\"cde\"}},"
    "\"NetworkSettings\":{\"Bridge\":\"\",\"SandboxID\":\"9f1e\",\"Ports\":{}}}";

/*
 * Podman 4.3 compat answer, captured on the build host from a container run
 * with --label com.docker.compose.service=payment-api (Mounts, HostConfig,
 * NetworkSettings and GraphDriver removed).
 */
static const char podman_body[] =
    "{\"Id\": \"" ID_PODMAN "\", \"Created\": \"2026-11-22T13:22:18.190559833Z\", "
    "\"Path\": \"/bin/busybox\", \"Args\": [\"sleep\", \"100\"], \"State\": "
    "{\"Status\": \"running\", \"Running\": true, \"Paused\": false, "
    "\"Restarting\": false, \"OOMKilled\": false, \"Dead\": false, \"Pid\": 6605, "
    "\"ExitCode\": 0, \"Error\": \"\", \"StartedAt\": \"2026-11-22T13:22:18.30808283Z\", "
    "\"FinishedAt\": \"0001-01-01T00:00:00Z\", \"Health\": {\"Status\": \"\", "
    "\"FailingStreak\": 0, \"Log\": null}}, \"Image\": "
    "\"sha256:1401a57088bff933431bd95000625a0825fde3f13b52102600e9871e365303e5\", "
    "\"ResolvConfPath\": \"/run/containers/storage/overlay-containers/" ID_PODMAN
    "/userdata/resolv.conf\", \"Name\": \"/sfs-probe2\", \"RestartCount\": 0, "
    "\"Driver\": \"overlay\", \"Platform\": \"linux\", \"MountLabel\": \"\", "
    "\"ProcessLabel\": \"\", \"AppArmorProfile\": \"\", \"ExecIDs\": [], "
    "\"SizeRootFs\": 0, \"Config\": {\"Hostname\": \"4e7c64d53e2d\", "
    "\"Domainname\": \"\", \"User\": \"\", \"AttachStdin\": false, "
    "\"AttachStdout\": false, \"AttachStderr\": false, \"Tty\": false, "
    "\"OpenStdin\": false, \"StdinOnce\": false, \"Env\": [\"TERM=xterm\", "
    "\"container=podman\", \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
    "/usr/bin:/sbin:/bin\", \"HOSTNAME=4e7c64d53e2d\"], \"Cmd\": [\"/bin/busybox\", "
    "\"sleep\", \"100\"], \"Image\": \"localhost/sfs-busybox:1.0\", \"Volumes\": null, "
    "\"WorkingDir\": \"/\", \"Entrypoint\": [], \"OnBuild\": null, \"Labels\": "
    "{\"com.docker.compose.service\": \"payment-api\", \"org.example.weird\": "
    "\"va lue/with:stuff\"}, \"StopSignal\": \"15\", \"StopTimeout\": 10}}";

/*
 * Podman's own /libpod/containers/<id>/json: no leading '/' on Name, and
 * the image in ImageName (Config.Image emptied here to prove the fallback).
 */
static const char libpod_body[] =
    "{\"Id\": \"" ID_LIBPOD "\", \"Created\": \"2026-11-22T13:22:09.620639318Z\", "
    "\"Path\": \"/bin/busybox\", \"Args\": [\"sleep\", \"100\"], \"Image\": "
    "\"1401a57088bff933431bd95000625a0825fde3f13b52102600e9871e365303e5\", "
    "\"ImageName\": \"localhost/sfs-busybox:1.0\", \"Name\": \"sfs-probe\", "
    "\"Pod\": \"\", \"Namespace\": \"\", \"Config\": {\"Hostname\": \"9884fa9cb219\", "
    "\"Env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", "
    "\"TERM=xterm\", \"HOSTNAME=9884fa9cb219\"], \"Image\": \"\", \"Labels\": "
    "{\"app\": \"payment\", \"tier\": \"backend\"}, \"Annotations\": "
    "{\"io.container.manager\": \"libpod\", \"io.podman.annotations.init\": "
    "\"FALSE\"}, \"StopSignal\": 15}}";

static const char *
label(const struct caller *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->n_labels; i++)
		if (strcmp(c->labels[i].key, key) == 0)
			return c->labels[i].value;
	return NULL;
}

static void
test_parse_docker(void **state)
{
	struct caller c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(engine_parse_inspect(docker_body, strlen(docker_body),
	    ID_DOCKER, &c), 0);
	assert_string_equal(c.container_name, "shop-payment-api-1");
	assert_string_equal(c.image, "registry.example.com/shop/payment-api:2.3.1");
	assert_int_equal(c.n_labels, 8);
	assert_false(c.labels_truncated);
	/* State.Pid, for identity_verify_engine. */
	assert_int_equal(c.container_pid, 48213);
	assert_string_equal(label(&c, "com.docker.compose.service"), "payment-api");
	assert_string_equal(label(&c, "pci.scope"), "cde");
	assert_string_equal(label(&c, "com.docker.compose.config-hash"),
	    "9b0c2d0a6e1f4c3b8a7d6e5f4c3b2a19080706050403020100ffeeddccbbaa99");
	/* Nothing of the environment is kept anywhere in the caller. */
	assert_null(memmem(&c, sizeof(c), "env-var-value", 13));
}

static void
test_parse_podman(void **state)
{
	struct caller c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(engine_parse_inspect(podman_body, strlen(podman_body),
	    ID_PODMAN, &c), 0);
	assert_string_equal(c.container_name, "sfs-probe2");
	assert_int_equal(c.container_pid, 6605);
	assert_string_equal(c.image, "localhost/sfs-busybox:1.0");
	assert_int_equal(c.n_labels, 2);
	assert_string_equal(label(&c, "org.example.weird"), "va lue/with:stuff");

	memset(&c, 0, sizeof(c));
	assert_int_equal(engine_parse_inspect(libpod_body, strlen(libpod_body),
	    ID_LIBPOD, &c), 0);
	assert_string_equal(c.container_name, "sfs-probe");
	assert_string_equal(c.image, "localhost/sfs-busybox:1.0");
	assert_string_equal(label(&c, "tier"), "backend");
	/* Annotations are not labels. */
	assert_null(label(&c, "io.container.manager"));
}

static void
test_parse_rejects(void **state)
{
	struct caller c;
	static const char *bad[] = {
		"",
		"not json",
		"[1,2]",
		"{\"Id\":\"" ID_DOCKER "\",\"Config\":[]}",
		"{\"Id\":\"" ID_DOCKER "\",\"Config\":{\"Labels\":[\"a=b\"]}}",
		"{\"Id\":\"" ID_DOCKER "\",\"Id\":\"" ID_DOCKER "\"}",
		"{\"Name\":\"/no-id\"}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0, sizeof(c));
		strcpy(c.container_name, "stale");
		assert_int_equal(engine_parse_inspect(bad[i], strlen(bad[i]),
		    ID_DOCKER, &c), -EPROTO);
		assert_string_equal(c.container_name, "");
	}
	/* Another container's answer is not this one's. */
	assert_int_equal(engine_parse_inspect(docker_body, strlen(docker_body),
	    ID_PODMAN, &c), -EPROTO);
	assert_string_equal(c.image, "");
	assert_int_equal(c.n_labels, 0);
	/* Without an expected id, a minimal body is fine; null Labels: none. */
	{
		static const char min[] =
		    "{\"Name\":\"x\",\"Config\":{\"Labels\":null}}";

		assert_int_equal(engine_parse_inspect(min, strlen(min), NULL,
		    &c), 0);
	}
	assert_string_equal(c.container_name, "x");
	assert_int_equal(c.n_labels, 0);
}

static void
test_parse_oversize_dropped(void **state)
{
	char body[16384], *p;
	char longval[300];
	struct caller c;
	int i;

	(void)state;
	memset(longval, 'v', sizeof(longval) - 1);
	longval[sizeof(longval) - 1] = '\0';
	p = body + sprintf(body, "{\"Id\":\"%s\",\"Name\":\"/%s\",\"Config\":"
	    "{\"Image\":\"%s\",\"Labels\":{\"big\":\"%s\",\"ok\":\"1\"",
	    ID_DOCKER, longval, "img:1", longval);
	for (i = 0; i < 20; i++)
		p += sprintf(p, ",\"k%02d\":\"v\"", i);
	strcpy(p, "}}}");

	memset(&c, 0, sizeof(c));
	assert_int_equal(engine_parse_inspect(body, strlen(body), ID_DOCKER, &c), 0);
	/* Too long for its field: dropped whole, never cut to a prefix. */
	assert_string_equal(c.container_name, "");
	assert_null(label(&c, "big"));
	assert_string_equal(c.image, "img:1");
	assert_int_equal(c.n_labels, IDENTITY_LABELS_MAX);
	assert_true(c.labels_truncated);
	assert_string_equal(label(&c, "ok"), "1");
}

/* ---- a stand-in Engine API ---------------------------------------------- */

struct server {
	char		 dir[64];
	char		 sock[100];
	int		 fd;
	pthread_t	 thread;
	int		 stop;		/* __atomic */
	pthread_mutex_t	 lock;
	int		 requests;
};

static void
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
respond(int fd, int status, const char *body, size_t len)
{
	char head[256];

	snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	    status, len);
	send_all(fd, head, strlen(head));
	send_all(fd, body, len);
}

static void
serve_one(struct server *s, int fd)
{
	char req[4096], path[256];
	size_t n = 0;
	ssize_t r;
	char *big;

	while (n < sizeof(req) - 1) {
		r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (sscanf(req, "GET %255s HTTP/1.1", path) != 1)
		return;
	pthread_mutex_lock(&s->lock);
	s->requests++;
	pthread_mutex_unlock(&s->lock);

	if (strcmp(path, "/containers/" ID_DOCKER "/json") == 0)
		respond(fd, 200, docker_body, strlen(docker_body));
	else if (strcmp(path, "/containers/" ID_PODMAN "/json") == 0)
		respond(fd, 200, podman_body, strlen(podman_body));
	else if (strcmp(path, "/containers/" ID_500 "/json") == 0)
		respond(fd, 500, "{\"message\":\"boom\"}", 18);
	else if (strcmp(path, "/containers/" ID_WRONG "/json") == 0)
		respond(fd, 200, docker_body, strlen(docker_body));
	else if (strcmp(path, "/containers/" ID_SLOW "/json") == 0)
		usleep(400 * 1000);
	else if (strcmp(path, "/containers/" ID_HUGE "/json") == 0) {
		size_t len = 2 * ENGINE_BODY_MAX;

		if ((big = malloc(len)) != NULL) {
			memset(big, ' ', len);
			respond(fd, 200, big, len);
			free(big);
		}
	} else {
		static const char nf[] = "{\"cause\":\"no such container\","
		    "\"message\":\"no container with name or ID found\","
		    "\"response\":404}";

		respond(fd, 404, nf, strlen(nf));
	}
}

static void *
server_run(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd;
	int c;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if ((c = accept(s->fd, NULL, NULL)) < 0)
			continue;
		serve_one(s, c);
		close(c);
	}
	return NULL;
}

static int
setup_server(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_un sun;

	if (s == NULL)
		return -1;
	strcpy(s->dir, "/tmp/test_engine.XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	snprintf(s->sock, sizeof(s->sock), "%s/engine.sock", s->dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->sock);
	if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(s->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(s->fd, 16) < 0)
		return -1;
	pthread_mutex_init(&s->lock, NULL);
	if (pthread_create(&s->thread, NULL, server_run, s) != 0)
		return -1;
	*state = s;
	return 0;
}

static int
teardown_server(void **state)
{
	struct server *s = *state;

	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->thread, NULL);
	close(s->fd);
	unlink(s->sock);
	rmdir(s->dir);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return 0;
}

static int
requests(struct server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->requests;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void
caller_for(struct caller *c, const char *id)
{
	memset(c, 0, sizeof(*c));
	c->runtime = IDENTITY_RUNTIME_DOCKER;
	snprintf(c->container_id, sizeof(c->container_id), "%s", id);
}

static void
test_enrich_and_cache(void **state)
{
	struct server *s = *state;
	struct engine_stats st;
	struct engine *e;
	struct caller c;
	char url[160];

	snprintf(url, sizeof(url), "unix://%s", s->sock);
	e = engine_new(url);
	assert_non_null(e);

	caller_for(&c, ID_DOCKER);
	assert_int_equal(engine_enrich(e, &c), 0);
	assert_string_equal(c.container_name, "shop-payment-api-1");
	assert_string_equal(c.image, "registry.example.com/shop/payment-api:2.3.1");
	assert_string_equal(label(&c, "com.docker.compose.project"), "shop");
	assert_int_equal(requests(s), 1);

	/* The second time comes from the cache. */
	caller_for(&c, ID_DOCKER);
	assert_int_equal(engine_enrich(e, &c), 0);
	assert_string_equal(c.container_name, "shop-payment-api-1");
	assert_int_equal(requests(s), 1);

	caller_for(&c, ID_PODMAN);
	assert_int_equal(engine_enrich(e, &c), 0);
	assert_string_equal(c.container_name, "sfs-probe2");
	assert_int_equal(requests(s), 2);

	/* Unknown container: -ENOENT, remembered for neg_ttl. */
	caller_for(&c, ID_404);
	strcpy(c.container_name, "stale");
	assert_int_equal(engine_enrich(e, &c), -ENOENT);
	assert_string_equal(c.container_name, "");
	assert_int_equal(engine_enrich(e, &c), -ENOENT);
	assert_int_equal(requests(s), 3);

	engine_stats(e, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.entries, 3);

	/* No container: nothing to ask, nothing to fill. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(engine_enrich(e, &c), 0);
	assert_int_equal(requests(s), 3);
	/* Never put a malformed id in a URL. */
	caller_for(&c, "../../info?x=");
	assert_int_equal(engine_enrich(e, &c), -EINVAL);
	assert_int_equal(requests(s), 3);
	engine_free(e);
}

static void
test_enrich_errors(void **state)
{
	struct server *s = *state;
	struct engine *e;
	struct caller c;

	e = engine_new(s->sock);
	assert_non_null(e);
	engine_set_timeout(e, 150);
	engine_set_cache(e, 16, 30000, 0);	/* failures not cached */

	caller_for(&c, ID_500);
	assert_int_equal(engine_enrich(e, &c), -EPROTO);
	caller_for(&c, ID_WRONG);
	assert_int_equal(engine_enrich(e, &c), -EPROTO);
	assert_string_equal(c.container_name, "");
	caller_for(&c, ID_HUGE);
	assert_int_equal(engine_enrich(e, &c), -EMSGSIZE);
	/* neg_ttl 0: a failure is asked again. */
	caller_for(&c, ID_500);
	assert_int_equal(engine_enrich(e, &c), -EPROTO);
	assert_int_equal(requests(s), 4);
	/* Last: the stand-in serves one request at a time. */
	caller_for(&c, ID_SLOW);
	assert_int_equal(engine_enrich(e, &c), -ETIMEDOUT);
	assert_string_equal(c.image, "");
	assert_int_equal(requests(s), 5);
	engine_free(e);
}

static void
test_enrich_cache_bound(void **state)
{
	struct server *s = *state;
	struct engine_stats st;
	struct engine *e;
	struct caller c;

	e = engine_new(s->sock);
	assert_non_null(e);
	engine_set_cache(e, 1, 30000, 30000);
	caller_for(&c, ID_DOCKER);
	assert_int_equal(engine_enrich(e, &c), 0);
	caller_for(&c, ID_PODMAN);
	assert_int_equal(engine_enrich(e, &c), 0);
	caller_for(&c, ID_DOCKER);
	assert_int_equal(engine_enrich(e, &c), 0);
	assert_string_equal(c.container_name, "shop-payment-api-1");
	engine_stats(e, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.misses, 3);
	assert_int_equal(requests(s), 3);
	engine_free(e);
}

static void
test_enrich_no_engine(void **state)
{
	struct engine *e;
	struct caller c;

	(void)state;
	assert_null(engine_new(""));
	assert_null(engine_new(NULL));
	engine_free(NULL);

	e = engine_new("/nonexistent/docker.sock");
	assert_non_null(e);
	caller_for(&c, ID_DOCKER);
	assert_int_equal(engine_enrich(e, &c), -ENOENT);
	assert_string_equal(c.container_name, "");
	assert_int_equal(c.n_labels, 0);
	engine_free(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_docker),
		cmocka_unit_test(test_parse_podman),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_oversize_dropped),
		cmocka_unit_test_setup_teardown(test_enrich_and_cache,
		    setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_enrich_errors,
		    setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_enrich_cache_bound,
		    setup_server, teardown_server),
		cmocka_unit_test(test_enrich_no_engine),
	};
	char why[256];

	/* As in the daemon: HTTP through the one module, answers locked. */
	if (secmem_init(8u << 20, why, sizeof(why)) != 0) {
		fprintf(stderr, "secmem_init: %s\n", why);
		return 1;
	}
	if (http_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
