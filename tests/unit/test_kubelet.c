/*
 * kubelet: the PodList parser on documents shaped like a kubelet's GET
 * /pods (init, ephemeral and restarted containers, containerd, CRI-O and
 * cgroupfs layouts), the resolution of a caller against it, the
 * runtime.kubelet config, and the snapshot cache against a small stand-in
 * kubelet on the loopback read-only port: one request for many callers,
 * singleflight, rate limit, pods that left, the kubelet down.
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
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/clk.h>
#include <secretsfs/http.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/secmem.h>

#define UID_PAY	"6f1c3a2e-9b7d-4e21-8a3f-0c5d7e9b1a24"
#define UID_WEB	"a2d4f6b8-1c3e-4a5b-9d7f-2e4c6a8b0d1f"
#define UID_NEW	"d3b07384-d9a0-4c8a-9f2b-6a1c7e5b3f90"
#define ID_API	"3f5c0e1d2b4a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
#define ID_OLD	"0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
#define ID_INIT	"1111111111111111111111111111111111111111111111111111111111111111"
#define ID_EPH	"2222222222222222222222222222222222222222222222222222222222222222"
#define ID_WEB	"3333333333333333333333333333333333333333333333333333333333333333"
#define ID_NEW	"4444444444444444444444444444444444444444444444444444444444444444"

/*
 * Two pods as a kubelet (1.30, containerd and CRI-O nodes alike) lists
 * them, cut to the members around those we read. payments/api restarted
 * once: its status holds the new id, lastState the old one, which is gone.
 */
static const char pods_body[] =
"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":["
"{\"metadata\":{\"name\":\"api-7d9f\",\"generateName\":\"api-\","
"\"namespace\":\"payments\",\"uid\":\"" UID_PAY "\",\"resourceVersion\":\"812\","
"\"creationTimestamp\":\"2026-01-01T00:00:00Z\",\"labels\":{\"app\":\"pay\","
"\"app.kubernetes.io/component\":\"api\",\"pod-template-hash\":\"7d9f\"},"
"\"annotations\":{\"kubernetes.io/config.source\":\"api\"},"
"\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
"\"name\":\"api-7d9\",\"uid\":\"x\"}]},"
"\"spec\":{\"initContainers\":[{\"name\":\"migrate\",\"image\":\"mig:1\"}],"
"\"containers\":[{\"name\":\"api\",\"image\":\"registry.example/pay:1.2\","
"\"env\":[{\"name\":\"X\",\"value\":\"y\"}]}],"
"\"ephemeralContainers\":[{\"name\":\"debugger-abc\",\"image\":\"busybox\","
"\"targetContainerName\":\"api\"}],"
"\"serviceAccountName\":\"payments-api\",\"serviceAccount\":\"payments-api\","
"\"nodeName\":\"node-1\"},"
"\"status\":{\"phase\":\"Running\",\"initContainerStatuses\":[{\"name\":"
"\"migrate\",\"image\":\"docker.io/library/mig:1\",\"imageID\":\"x\","
"\"containerID\":\"containerd://" ID_INIT "\",\"ready\":true,"
"\"restartCount\":0,\"state\":{\"terminated\":{\"exitCode\":0}}}],"
"\"containerStatuses\":[{\"name\":\"api\",\"image\":"
"\"registry.example/pay:1.2\",\"imageID\":\"registry.example/pay@sha256:00\","
"\"containerID\":\"containerd://" ID_API "\",\"ready\":true,\"started\":true,"
"\"restartCount\":1,\"state\":{\"running\":{\"startedAt\":\"2026-01-01T00:01:"
"00Z\"}},\"lastState\":{\"terminated\":{\"exitCode\":137,\"containerID\":"
"\"containerd://" ID_OLD "\"}}}],"
"\"ephemeralContainerStatuses\":[{\"name\":\"debugger-abc\",\"image\":"
"\"docker.io/library/busybox:latest\",\"containerID\":\"containerd://" ID_EPH
"\",\"restartCount\":0,\"state\":{\"running\":{}}}]}},"
"{\"metadata\":{\"name\":\"web-0\",\"namespace\":\"frontend\",\"uid\":\""
UID_WEB "\"},\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx\"},"
"{\"name\":\"sidecar\",\"image\":\"envoy\"}],\"serviceAccountName\":\"web\"},"
"\"status\":{\"containerStatuses\":[{\"name\":\"web\",\"image\":"
"\"docker.io/library/nginx:1.25\",\"containerID\":\"cri-o://" ID_WEB "\","
"\"restartCount\":0},{\"name\":\"sidecar\",\"image\":\"envoy\","
"\"restartCount\":0,\"state\":{\"waiting\":{\"reason\":"
"\"ContainerCreating\"}}}]}},"
/* A pod without a uid: no cgroup can name it. */
"{\"metadata\":{\"name\":\"x\",\"namespace\":\"y\"}}"
"]}";

static struct kubelet_pods *
parse(const char *body)
{
	struct kubelet_pods *p;

	assert_int_equal(kubelet_parse_pods(body, strlen(body), &p), 0);
	return p;
}

static void
caller_in(struct caller *c, enum identity_runtime rt, const char *pod,
    const char *id)
{
	memset(c, 0, sizeof(*c));
	c->runtime = rt;
	snprintf(c->pod_uid, sizeof(c->pod_uid), "%s", pod);
	snprintf(c->container_id, sizeof(c->container_id), "%s", id);
}

static const char *
plabel(const struct caller *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->k8s.n_labels; i++)
		if (strcmp(c->k8s.labels[i].key, key) == 0)
			return c->k8s.labels[i].value;
	return NULL;
}

static void
test_parse_real_shape(void **state)
{
	struct kubelet_pods *p = parse(pods_body);
	struct caller c;

	(void)state;
	assert_int_equal(kubelet_pods_count(p), 2);

	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY, ID_API);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.namespace, "payments");
	assert_string_equal(c.k8s.pod, "api-7d9f");
	assert_string_equal(c.k8s.service_account, "payments-api");
	assert_string_equal(c.k8s.container, "api");
	assert_string_equal(c.k8s.image, "registry.example/pay:1.2");
	assert_int_equal(c.k8s.n_labels, 3);
	assert_string_equal(plabel(&c, "app"), "pay");
	assert_string_equal(plabel(&c, "app.kubernetes.io/component"), "api");

	/* The init and the ephemeral container are the pod's too. */
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY, ID_INIT);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.container, "migrate");
	assert_string_equal(c.k8s.image, "docker.io/library/mig:1");
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY, ID_EPH);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.container, "debugger-abc");

	/* The restarted container's old id is no container any more. */
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY, ID_OLD);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	assert_string_equal(c.k8s.namespace, "");

	/* The pod's own cgroup (no container): the pod, no container. */
	caller_in(&c, IDENTITY_RUNTIME_KUBEPODS, UID_PAY, "");
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.namespace, "payments");
	assert_string_equal(c.k8s.container, "");

	/* CRI-O; and a cgroupfs layout, which names no runtime. */
	caller_in(&c, IDENTITY_RUNTIME_CRIO, UID_WEB, ID_WEB);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.container, "web");
	assert_string_equal(c.k8s.service_account, "web");
	assert_int_equal(c.k8s.n_labels, 0);
	caller_in(&c, IDENTITY_RUNTIME_KUBEPODS, UID_WEB, ID_WEB);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);

	/* A cri-o id under a containerd scope is not that container. */
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_WEB, ID_WEB);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	/* Nor is one pod's container another pod's. */
	caller_in(&c, IDENTITY_RUNTIME_CRIO, UID_PAY, ID_WEB);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	/* A pod the kubelet does not list. */
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_NEW, ID_NEW);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	/* No pod at all: untouched. */
	caller_in(&c, IDENTITY_RUNTIME_DOCKER, "", ID_API);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_NONE);
	kubelet_pods_free(p);
}

static void
test_find_by_name(void **state)
{
	struct kubelet_pods *p = parse(pods_body);
	char uid[64], id[IDENTITY_ID_MAX];

	(void)state;
	assert_int_equal(kubelet_pods_find(p, "payments", "api-7d9f", NULL,
	    uid, id), 0);
	assert_string_equal(uid, UID_PAY);
	assert_string_equal(id, ID_API);
	assert_int_equal(kubelet_pods_find(p, "payments", "api-7d9f",
	    "migrate", uid, id), 0);
	assert_string_equal(id, ID_INIT);
	/* sidecar has no id yet (ContainerCreating). */
	assert_int_equal(kubelet_pods_find(p, "frontend", "web-0", "sidecar",
	    uid, id), -ENOENT);
	assert_int_equal(kubelet_pods_find(p, "frontend", "api-7d9f", NULL,
	    uid, id), -ENOENT);
	kubelet_pods_free(p);
}

static void
test_parse_rejects_and_drops(void **state)
{
	static const char *const bad[] = {
		"", "[]", "{\"kind\":\"Pod\",\"items\":[]}",
		"{\"items\":{}}", "{\"items\":[1]}",
		"{\"items\":[{\"metadata\":[]}]}",
		"{\"items\":[{\"metadata\":{\"uid\":\"u\"},\"status\":"
		    "{\"containerStatuses\":{}}}]}",
		"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"labels\":[]}}]}",
		"{\"items\":[],\"items\":[]}",
	};
	struct kubelet_pods *p;
	struct caller c;
	char big[400], body[2048];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = (struct kubelet_pods *)1;
		assert_int_equal(kubelet_parse_pods(bad[i], strlen(bad[i]),
		    &p), -EPROTO);
		assert_null(p);
	}
	p = parse("{\"kind\":\"PodList\",\"items\":null}");
	assert_int_equal(kubelet_pods_count(p), 0);
	kubelet_pods_free(p);

	/*
	 * A namespace too long to hold is dropped, not cut: the pod is known
	 * with an empty namespace, which no namespace glob matches. A label
	 * value too long for a label is dropped too.
	 */
	memset(big, 'n', 70);
	big[70] = '\0';
	snprintf(body, sizeof(body), "{\"items\":[{\"metadata\":{\"uid\":\""
	    UID_NEW "\",\"namespace\":\"%s\",\"labels\":{\"a\":\"%s\","
	    "\"b\":\"ok\"}},\"status\":{\"containerStatuses\":[{\"name\":\"c\","
	    "\"containerID\":\"containerd://%s\"},{\"name\":\"d\","
	    "\"containerID\":\"rkt://" ID_INIT "\"}]}}]}", big, big, ID_NEW);
	p = parse(body);
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_NEW, ID_NEW);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.namespace, "");
	assert_int_equal(c.k8s.n_labels, 1);
	assert_true(c.k8s.labels_truncated);
	assert_string_equal(plabel(&c, "b"), "ok");
	/* An unknown scheme is no container we can see in a cgroup. */
	caller_in(&c, IDENTITY_RUNTIME_KUBEPODS, UID_NEW, ID_INIT);
	kubelet_pods_resolve(p, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	kubelet_pods_free(p);
}

static void
test_config(void **state)
{
	static const struct {
		const char	*json, *path;
	} bad[] = {
		{ "{\"urll\":\"x\"}", "runtime.kubelet.urll" },
		{ "{\"url\":\"http://10.0.0.1:10250\"}", "runtime.kubelet.url" },
		{ "{\"url\":\"https://u:p@10.0.0.1:10250\"}",
		    "runtime.kubelet.url" },
		{ "{\"token_file\":\"rel/token\"}",
		    "runtime.kubelet.token_file" },
		{ "{\"timeout\":0}", "runtime.kubelet.timeout" },
		{ "{\"read_only_port\":true,\"token_file\":\"/t\"}",
		    "runtime.kubelet.read_only_port" },
		{ "{\"read_only_port\":true,\"url\":\"http://10.1.2.3:10255\"}",
		    "runtime.kubelet.url" },
	};
	struct kubelet_config kc;
	struct cfg_err err;
	json_t *o;
	size_t i;

	(void)state;
	o = json_loads("{}", 0, NULL);
	assert_int_equal(kubelet_config_from_json(o, "runtime.kubelet", &kc,
	    &err), 0);
	assert_null(kc.url);
	assert_false(kc.read_only_port);
	assert_int_equal(kc.timeout_ms, KUBELET_DEFAULT_TIMEOUT_MS);
	assert_int_equal(kc.ttl_ms, KUBELET_DEFAULT_TTL_MS);
	kubelet_config_clear(&kc);
	json_decref(o);
	o = json_loads("{\"url\":\"https://node-1:10250\",\"token_file\":"
	    "\"/var/run/secrets/tokens/kubelet\",\"ca_file\":\"/etc/ca.crt\","
	    "\"timeout\":\"500ms\",\"cache_ttl\":\"10s\",\"min_refresh\":0}",
	    0, NULL);
	assert_int_equal(kubelet_config_from_json(o, "runtime.kubelet", &kc,
	    &err), 0);
	assert_string_equal(kc.url, "https://node-1:10250");
	assert_string_equal(kc.token_file, "/var/run/secrets/tokens/kubelet");
	assert_int_equal(kc.timeout_ms, 500);
	assert_int_equal(kc.ttl_ms, 10000);
	assert_int_equal(kc.min_refresh_ms, 0);
	kubelet_config_clear(&kc);
	json_decref(o);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_loads(bad[i].json, 0, NULL);
		assert_non_null(o);
		memset(&err, 0, sizeof(err));
		assert_int_equal(kubelet_config_from_json(o, "runtime.kubelet",
		    &kc, &err), -EINVAL);
		assert_string_equal(err.path, bad[i].path);
		json_decref(o);
	}
}

/* ---- a stand-in kubelet on the loopback read-only port ------------------ */

struct server {
	int		 fd;
	int		 port;
	pthread_t	 thread;
	int		 stop;		/* __atomic */
	pthread_mutex_t	 lock;
	int		 requests;
	int		 status;	/* to answer; 0: close without one */
	int		 delay_ms;
	char		*body;
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
serve_one(struct server *s, int fd)
{
	char req[4096], head[256], *body;
	int status, delay;
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(req) - 1) {
		r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (strncmp(req, "GET /pods HTTP/1.1\r\n", 20) != 0)
		return;
	pthread_mutex_lock(&s->lock);
	s->requests++;
	status = s->status;
	delay = s->delay_ms;
	body = strdup(s->body ? s->body : "");
	pthread_mutex_unlock(&s->lock);
	if (delay)
		usleep((useconds_t)delay * 1000);
	if (status && body) {
		snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: "
		    "application/json\r\nContent-Length: %zu\r\nConnection: "
		    "close\r\n\r\n", status, strlen(body));
		send_all(fd, head, strlen(head));
		send_all(fd, body, strlen(body));
	}
	free(body);
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

static void
server_set(struct server *s, int status, const char *body, int delay_ms)
{
	pthread_mutex_lock(&s->lock);
	free(s->body);
	s->body = strdup(body);
	s->status = status;
	s->delay_ms = delay_ms;
	pthread_mutex_unlock(&s->lock);
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

static int
setup_server(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (s == NULL)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(s->fd, 64) < 0 ||
	    getsockname(s->fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	s->port = ntohs(sin.sin_port);
	pthread_mutex_init(&s->lock, NULL);
	server_set(s, 200, pods_body, 0);
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
	pthread_mutex_destroy(&s->lock);
	free(s->body);
	free(s);
	return 0;
}

static struct kubelet *
kubelet_for(struct server *s, int64_t ttl_ms, int64_t min_refresh_ms)
{
	struct kubelet_config kc;
	struct kubelet *k;
	char url[64], why[256];

	memset(&kc, 0, sizeof(kc));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	kc.url = url;
	kc.read_only_port = true;
	kc.timeout_ms = 1000;
	kc.ttl_ms = ttl_ms;
	kc.min_refresh_ms = min_refresh_ms;
	assert_int_equal(kubelet_new(&kc, &k, why, sizeof(why)), 0);
	return k;
}

static void
test_cache_one_request(void **state)
{
	struct server *s = *state;
	struct kubelet *k = kubelet_for(s, 60000, 0);
	struct kubelet_stats st;
	struct caller c;
	int i;

	for (i = 0; i < 5; i++) {
		caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY, ID_API);
		assert_int_equal(kubelet_enrich(k, &c), 0);
		assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
		assert_string_equal(c.k8s.service_account, "payments-api");
		caller_in(&c, IDENTITY_RUNTIME_CRIO, UID_WEB, ID_WEB);
		assert_int_equal(kubelet_enrich(k, &c), 0);
		assert_string_equal(c.k8s.namespace, "frontend");
	}
	/* One snapshot serves every pod. */
	assert_int_equal(requests(s), 1);
	kubelet_stats(k, &st);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.hits, 9);
	assert_int_equal(st.pods, 2);
	/* A caller in no pod costs nothing. */
	caller_in(&c, IDENTITY_RUNTIME_DOCKER, "", ID_API);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_NONE);
	assert_int_equal(requests(s), 1);
	kubelet_free(k);
}

static void
test_cache_new_pod_and_gone_pod(void **state)
{
	struct server *s = *state;
	struct kubelet *k = kubelet_for(s, 60000, 0);
	struct caller c;
	char body[sizeof(pods_body) + 512];

	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_NEW, ID_NEW);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	assert_int_equal(requests(s), 1);

	/* The pod starts: its first open asks once, and knows it. */
	snprintf(body, sizeof(body), "{\"kind\":\"PodList\",\"items\":["
	    "{\"metadata\":{\"name\":\"n\",\"namespace\":\"late\",\"uid\":\""
	    UID_NEW "\"},\"spec\":{\"serviceAccountName\":\"sa\"},\"status\":"
	    "{\"containerStatuses\":[{\"name\":\"c\",\"containerID\":"
	    "\"containerd://" ID_NEW "\"}]}}]}");
	server_set(s, 200, body, 0);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.namespace, "late");
	assert_int_equal(requests(s), 2);

	/* payments left with that refresh: dropped, and asked about once. */
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY, ID_API);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	assert_int_equal(requests(s), 3);
	kubelet_free(k);
}

static void
test_cache_kubelet_down(void **state)
{
	struct server *s = *state;
	struct kubelet *k = kubelet_for(s, 1, 0);
	struct kubelet_stats st;
	struct caller c;
	int n;

	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY, ID_API);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);

	/* Down (the connection closes unanswered), and then 500. */
	server_set(s, 0, "", 0);
	usleep(5 * 1000);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_string_equal(c.k8s.pod, "api-7d9f");
	/*
	 * Right after a failure a known pod is answered from the snapshot,
	 * not made to wait for another failing request.
	 */
	n = requests(s);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_KNOWN);
	assert_int_equal(requests(s), n);
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_NEW, ID_NEW);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNREACHABLE);
	assert_string_equal(c.k8s.namespace, "");
	server_set(s, 500, "{}", 0);
	assert_int_equal(kubelet_enrich(k, &c), 0);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNREACHABLE);
	kubelet_stats(k, &st);
	assert_int_equal(st.last_status, 500);
	assert_true(st.errors >= 3);
	assert_int_equal(st.pods, 2);	/* the old snapshot is kept */
	kubelet_free(k);
}

struct racer {
	struct kubelet	*k;
	struct caller	 c;
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	kubelet_enrich(r->k, &r->c);
	return NULL;
}

static void
test_cache_singleflight_and_rate_limit(void **state)
{
	struct server *s = *state;
	struct kubelet *k = kubelet_for(s, 60000, 300);
	struct racer r[8];
	pthread_t t[8];
	struct caller c;
	int64_t t0;
	size_t i;

	/* Eight first opens at once, the kubelet slow: one request. */
	server_set(s, 200, pods_body, 200);
	for (i = 0; i < 8; i++) {
		r[i].k = k;
		caller_in(&r[i].c, IDENTITY_RUNTIME_CONTAINERD, UID_PAY,
		    ID_API);
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].c.k8s.state, IDENTITY_K8S_KNOWN);
	}
	assert_int_equal(requests(s), 1);

	/*
	 * Misses right after are spaced by min_refresh: two unknown pods in
	 * a row cost two requests, the second one 300ms after the first.
	 */
	server_set(s, 200, pods_body, 0);
	t0 = clk_mono_ms();
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_NEW, ID_NEW);
	kubelet_enrich(k, &c);
	caller_in(&c, IDENTITY_RUNTIME_CONTAINERD, UID_NEW, ID_INIT);
	kubelet_enrich(k, &c);
	assert_int_equal(c.k8s.state, IDENTITY_K8S_UNLISTED);
	assert_int_equal(requests(s), 3);
	assert_true(clk_mono_ms() - t0 >= 300);
	kubelet_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_real_shape),
		cmocka_unit_test(test_find_by_name),
		cmocka_unit_test(test_parse_rejects_and_drops),
		cmocka_unit_test(test_config),
		cmocka_unit_test_setup_teardown(test_cache_one_request,
		    setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_cache_new_pod_and_gone_pod,
		    setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_cache_kubelet_down,
		    setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(
		    test_cache_singleflight_and_rate_limit, setup_server,
		    teardown_server),
	};
	char why[256];

	if (secmem_init(8u << 20, why, sizeof(why)) != 0) {
		fprintf(stderr, "secmem_init: %s\n", why);
		return 1;
	}
	if (http_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
