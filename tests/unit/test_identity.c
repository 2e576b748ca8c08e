/*
 * identity: cgroup layouts of every runtime (v1, v2, hybrid), /proc/<pid>/stat
 * parsing, and the (pid, start time) cache against a fake /proc tree.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/identity.h>

#define ID_A	"a8ab54591efe0ae52aff7ed079c7e69d79b1d785cf5c051f0cf48c42cfd771a1"
#define ID_B	"104c997c3b94272f24ec155a464167cde8223d5fbc4f3d2d1f6c6e7ef07b5911"
#define ID_C	"60dbad47d63117d98f6cdfc66e319ee1dc20ef6dbafae3cda7920d7a2c2ec4cd"
#define POD_U	"1b5a824d-1f8a-4e99-ba24-8767f38c9c2c"
#define POD_S	"1b5a824d_1f8a_4e99_ba24_8767f38c9c2c"	/* systemd's spelling */

/*
 * A hybrid host (Ubuntu 20.04 / Debian 10 style): every v1 controller plus
 * the unified line. rdma is not delegated by runtimes and stays at "/".
 */
static char *
hybrid(const char *v1, const char *v2)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf),
	    "12:blkio:%1$s\n"
	    "11:cpuset:%1$s\n"
	    "10:memory:%1$s\n"
	    "9:devices:%1$s\n"
	    "8:hugetlb:%1$s\n"
	    "7:net_cls,net_prio:%1$s\n"
	    "6:perf_event:%1$s\n"
	    "5:rdma:/\n"
	    "4:pids:%1$s\n"
	    "3:cpu,cpuacct:%1$s\n"
	    "2:freezer:%1$s\n"
	    "1:name=systemd:%1$s\n"
	    "0::%2$s\n", v1, v2);
	return buf;
}

static void
parse(const char *text, struct caller *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(identity_parse_cgroup(text, c), 0);
}

/* ---- layouts ------------------------------------------------------------ */

static void
test_docker_systemd_hybrid(void **state)
{
	struct caller c;
	const char *p = "/system.slice/docker-" ID_A ".scope";

	(void)state;
	parse(hybrid(p, p), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_DOCKER);
	assert_string_equal(c.container_id, ID_A);
	assert_string_equal(c.cgroup, p);
	assert_string_equal(c.pod_uid, "");
	assert_string_equal(c.unit, "");
	assert_false(identity_is_host(&c));
}

static void
test_docker_cgroupfs_hybrid(void **state)
{
	struct caller c;

	(void)state;
	/* dockerd's cgroupfs driver on a hybrid host leaves unified at "/". */
	parse(hybrid("/docker/" ID_B, "/"), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_DOCKER);
	assert_string_equal(c.container_id, ID_B);
	/* v2 is "/", so the container comes from name=systemd. */
	assert_string_equal(c.cgroup, "/docker/" ID_B);
}

static void
test_docker_v2_only(void **state)
{
	struct caller c;

	(void)state;
	parse("0::/system.slice/docker-" ID_C ".scope\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_DOCKER);
	assert_string_equal(c.container_id, ID_C);
}

static void
test_podman_cgroupfs_real(void **state)
{
	struct caller c;
	/* Copied from a `podman run --runtime runc --rootfs` on the build host. */
	const char *text =
	    "9:name=systemd:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "8:pids:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "7:blkio:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "6:freezer:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "5:devices:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "4:memory:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "3:cpuset:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "2:cpuacct:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "1:cpu:/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n"
	    "0::/libpod_parent/libpod-9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565\n";

	(void)state;
	parse(text, &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_PODMAN);
	assert_string_equal(c.container_id,
	    "9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565");
	assert_string_equal(c.cgroup, "/libpod_parent/libpod-"
	    "9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565");
}

static void
test_podman_systemd_scope(void **state)
{
	struct caller c;

	(void)state;
	/* A container running systemd gets a "container" child cgroup. */
	parse(hybrid("/machine.slice/libpod-" ID_A ".scope",
	    "/machine.slice/libpod-" ID_A ".scope/container"), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_PODMAN);
	assert_string_equal(c.container_id, ID_A);
	assert_string_equal(c.cgroup,
	    "/machine.slice/libpod-" ID_A ".scope/container");

	/* Quadlet runs the payload below the unit, --cgroups=split. */
	parse("0::/system.slice/app.service/libpod-payload-" ID_B "\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_PODMAN);
	assert_string_equal(c.container_id, ID_B);
	assert_string_equal(c.unit, "");
}

static void
test_podman_conmon_is_not_the_container(void **state)
{
	struct caller c;

	(void)state;
	parse(hybrid("/machine.slice/libpod-conmon-" ID_A ".scope",
	    "/machine.slice/libpod-conmon-" ID_A ".scope"), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	assert_string_equal(c.container_id, "");
	assert_true(identity_is_host(&c));

	/* The cgroupfs manager's conmon, as on the build host. */
	parse("9:name=systemd:/\n8:pids:/libpod_parent/conmon\n"
	    "4:memory:/libpod_parent/conmon\n0::/libpod_parent/conmon\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	assert_string_equal(c.container_id, "");
	assert_string_equal(c.cgroup, "/libpod_parent/conmon");
}

static void
test_containerd_cri_pod(void **state)
{
	struct caller c;
	const char *p = "/kubepods.slice/kubepods-burstable.slice/"
	    "kubepods-burstable-pod" POD_S ".slice/cri-containerd-" ID_B ".scope";

	(void)state;
	parse(hybrid(p, p), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_CONTAINERD);
	assert_string_equal(c.container_id, ID_B);
	assert_string_equal(c.pod_uid, POD_U);
	assert_string_equal(c.cgroup, p);

	/* Guaranteed QoS pods sit directly under kubepods.slice. */
	parse("0::/kubepods.slice/kubepods-pod" POD_S ".slice/cri-containerd-"
	    ID_C ".scope\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_CONTAINERD);
	assert_string_equal(c.container_id, ID_C);
	assert_string_equal(c.pod_uid, POD_U);
}

static void
test_containerd_colon_form(void **state)
{
	struct caller c;

	(void)state;
	parse("0::/system.slice/containerd.service/kubepods-besteffort-pod"
	    POD_S ".slice:cri-containerd:" ID_A "\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_CONTAINERD);
	assert_string_equal(c.container_id, ID_A);
	assert_string_equal(c.pod_uid, POD_U);
	assert_string_equal(c.unit, "");
}

static void
test_crio_and_conmon(void **state)
{
	struct caller c;
	const char *pod = "/kubepods.slice/kubepods-besteffort.slice/"
	    "kubepods-besteffort-pod" POD_S ".slice";
	char p[512];

	(void)state;
	snprintf(p, sizeof(p), "%s/crio-%s.scope", pod, ID_C);
	parse(hybrid(p, p), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_CRIO);
	assert_string_equal(c.container_id, ID_C);
	assert_string_equal(c.pod_uid, POD_U);

	/* crio's conmon lives in the pod slice: the pod, never the container. */
	snprintf(p, sizeof(p), "%s/crio-conmon-%s.scope", pod, ID_C);
	parse(hybrid(p, p), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_KUBEPODS);
	assert_string_equal(c.container_id, "");
	assert_string_equal(c.pod_uid, POD_U);
	assert_false(identity_is_host(&c));
}

static void
test_kubepods_cgroupfs(void **state)
{
	struct caller c;

	(void)state;
	parse(hybrid("/kubepods/besteffort/pod" POD_U "/" ID_A, "/"), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_KUBEPODS);
	assert_string_equal(c.container_id, ID_A);
	assert_string_equal(c.pod_uid, POD_U);
	assert_string_equal(c.cgroup, "/kubepods/besteffort/pod" POD_U "/" ID_A);

	/* Guaranteed pods have no QoS level; static pods have a hash uid. */
	parse("0::/kubepods/pod4c0b5c7e27a1e8c7e37b7c8f2b9e1d3a/" ID_B "\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_KUBEPODS);
	assert_string_equal(c.container_id, ID_B);
	assert_string_equal(c.pod_uid, "4c0b5c7e27a1e8c7e37b7c8f2b9e1d3a");

	/* A bare id outside kubepods is nobody's container. */
	parse("0::/somewhere/" ID_B "\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	assert_string_equal(c.container_id, "");
}

static void
test_kubepods_docker_systemd(void **state)
{
	struct caller c;

	(void)state;
	parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
	    POD_S ".slice/docker-" ID_A ".scope\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_DOCKER);
	assert_string_equal(c.container_id, ID_A);
	assert_string_equal(c.pod_uid, POD_U);
}

static void
test_systemd_service(void **state)
{
	struct caller c;

	(void)state;
	parse(hybrid("/system.slice/nginx.service", "/system.slice/nginx.service"),
	    &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_SYSTEMD);
	assert_string_equal(c.unit, "nginx.service");
	assert_string_equal(c.container_id, "");
	assert_true(identity_is_host(&c));

	/* Outermost service: what a Delegate=yes service names below is its own. */
	parse("0::/system.slice/backup.service/sub/fake.service\n", &c);
	assert_string_equal(c.unit, "backup.service");
}

/*
 * The systemd-driver layouts again, one line kind at a time: as a v1-only
 * host (CentOS 7 style: no "0::" line) shows them, and as a pure v2 host
 * does. In hybrid() the v2 line always decides; here each kind must decide
 * on its own.
 */
static char *
v1_only(const char *p)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
	    "11:memory:%1$s\n"
	    "10:devices:%1$s\n"
	    "9:rdma:/\n"
	    "8:pids:%1$s\n"
	    "4:cpu,cpuacct:%1$s\n"
	    "1:name=systemd:%1$s\n", p);
	return buf;
}

static char *
v2_only(const char *p)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "0::%s\n", p);
	return buf;
}

static void
test_systemd_layouts_each_line_kind(void **state)
{
	static const struct {
		const char	*path;
		int		 runtime;
		const char	*id, *pod, *unit;
	} cases[] = {
		{ "/system.slice/docker-" ID_A ".scope",
		  IDENTITY_RUNTIME_DOCKER, ID_A, "", "" },
		{ "/machine.slice/libpod-" ID_B ".scope",
		  IDENTITY_RUNTIME_PODMAN, ID_B, "", "" },
		{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
		  POD_S ".slice/cri-containerd-" ID_C ".scope",
		  IDENTITY_RUNTIME_CONTAINERD, ID_C, POD_U, "" },
		{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
		  POD_S ".slice/crio-" ID_A ".scope",
		  IDENTITY_RUNTIME_CRIO, ID_A, POD_U, "" },
		{ "/kubepods.slice/kubepods-pod" POD_S ".slice",
		  IDENTITY_RUNTIME_KUBEPODS, "", POD_U, "" },
		{ "/system.slice/nginx.service",
		  IDENTITY_RUNTIME_SYSTEMD, "", "", "nginx.service" },
	};
	char *(*const kinds[])(const char *) = { v1_only, v2_only };
	struct caller c;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (k = 0; k < 2; k++) {
			print_message("case %zu, %s\n", i, k ? "v2" : "v1");
			parse(kinds[k](cases[i].path), &c);
			assert_int_equal(c.runtime, cases[i].runtime);
			assert_string_equal(c.container_id, cases[i].id);
			assert_string_equal(c.pod_uid, cases[i].pod);
			assert_string_equal(c.unit, cases[i].unit);
			assert_string_equal(c.cgroup, cases[i].path);
		}
	}
}

static void
test_host_process(void **state)
{
	struct caller c;

	(void)state;
	parse(hybrid("/user.slice/user-1000.slice/session-3.scope",
	    "/user.slice/user-1000.slice/session-3.scope"), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	assert_string_equal(c.container_id, "");
	assert_string_equal(c.unit, "");
	assert_string_equal(c.cgroup, "/user.slice/user-1000.slice/session-3.scope");

	/* The build host's own layout: a 32-hex id that is no container. */
	parse("9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n"
	    "5:devices:/\n4:memory:/process_api/0362528f1f4673caf5ef65cd4c4f66a0\n"
	    "3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	assert_string_equal(c.cgroup, "/");

	/* A v1-only host falls back to name=systemd for the path. */
	parse("3:memory:/foo\n2:name=systemd:/user.slice\n1:pids:/bar\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	assert_string_equal(c.cgroup, "/user.slice");
}

static void
test_v2_preferred(void **state)
{
	struct caller c;
	char text[1024];

	(void)state;
	/* v2 and v1 both name a container: v2 wins the tie. */
	snprintf(text, sizeof(text), "4:memory:/docker/%s\n"
	    "1:name=systemd:/docker/%s\n0::/system.slice/docker-%s.scope\n",
	    ID_A, ID_A, ID_A);
	parse(text, &c);
	assert_string_equal(c.cgroup, "/system.slice/docker-" ID_A ".scope");
	/* A container beats a service, whichever line says so. */
	parse("4:memory:/docker/" ID_B "\n0::/system.slice/foo.service\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_DOCKER);
	assert_string_equal(c.container_id, ID_B);
	assert_string_equal(c.cgroup, "/docker/" ID_B);
}

/* ---- things a container could try -------------------------------------- */

static void
test_outermost_container_wins(void **state)
{
	struct caller c;

	(void)state;
	/* A container with a delegated subtree names a child after another. */
	parse("0::/system.slice/docker-" ID_A ".scope/docker-" ID_B ".scope\n", &c);
	assert_string_equal(c.container_id, ID_A);
	parse("0::/docker/" ID_A "/docker/" ID_B "\n", &c);
	assert_string_equal(c.container_id, ID_A);
	parse("0::/machine.slice/libpod-" ID_C ".scope/kubepods/pod" POD_U "/"
	    ID_B "\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_PODMAN);
	assert_string_equal(c.container_id, ID_C);
	assert_string_equal(c.pod_uid, "");
}

static void
test_user_manager_subtree_untrusted(void **state)
{
	struct caller c;

	(void)state;
	/* Any user can create these below user@<uid>.service. */
	parse(hybrid("/user.slice/user-1000.slice/user@1000.service",
	    "/user.slice/user-1000.slice/user@1000.service/user.slice/"
	    "libpod-" ID_A ".scope"), &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_SYSTEMD);
	assert_string_equal(c.container_id, "");
	assert_string_equal(c.unit, "user@1000.service");
	assert_true(identity_is_host(&c));

	parse("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
	    "docker-" ID_B ".scope\n", &c);
	assert_string_equal(c.container_id, "");
	assert_string_equal(c.unit, "user@1000.service");
}

static void
test_near_misses(void **state)
{
	struct caller c;

	(void)state;
	/* 63 hex digits, upper case, a trailing junk: none is an id. */
	parse("0::/system.slice/docker-"
	    "a8ab54591efe0ae52aff7ed079c7e69d79b1d785cf5c051f0cf48c42cfd771a"
	    ".scope\n", &c);
	assert_string_equal(c.container_id, "");
	parse("0::/system.slice/docker-"
	    "A8AB54591EFE0AE52AFF7ED079C7E69D79B1D785CF5C051F0CF48C42CFD771A1"
	    ".scope\n", &c);
	assert_string_equal(c.container_id, "");
	parse("0::/system.slice/docker-" ID_A ".scopex\n", &c);
	assert_string_equal(c.container_id, "");
	parse("0::/system.slice/docker-" ID_A "\n", &c);
	assert_string_equal(c.container_id, "");
	parse("0::/crio-" ID_A "\n", &c);
	assert_string_equal(c.container_id, "");
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	/* ".service" alone is not a unit. */
	parse("0::/system.slice/.service\n", &c);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
}

static void
test_malformed(void **state)
{
	struct caller c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(identity_parse_cgroup("", &c), -EINVAL);
	assert_int_equal(identity_parse_cgroup("garbage\n", &c), -EINVAL);
	assert_int_equal(identity_parse_cgroup("x:memory:/docker/" ID_A "\n", &c),
	    -EINVAL);
	assert_int_equal(identity_parse_cgroup("0::relative\n", &c), -EINVAL);
	/* Junk lines are skipped, a good one still counts; no final newline. */
	parse("junk\n\n0::/system.slice/docker-" ID_A ".scope", &c);
	assert_string_equal(c.container_id, ID_A);
}

static void
test_long_path_not_truncated(void **state)
{
	char text[2048], *p;
	struct caller c;
	size_t i;

	(void)state;
	p = text + snprintf(text, sizeof(text), "0::/system.slice/docker-%s.scope",
	    ID_A);
	for (i = 0; i < 60; i++)
		p += sprintf(p, "/level%02zu", i);
	strcpy(p, "\n");
	assert_true(strlen(text) > IDENTITY_CGROUP_MAX);
	parse(text, &c);
	/* Identified from the whole path; the field stays empty, not cut. */
	assert_string_equal(c.container_id, ID_A);
	assert_string_equal(c.cgroup, "");
}

static void
test_runtime_names(void **state)
{
	static const char *names[] = { "host", "docker", "podman", "containerd",
	    "cri-o", "kubepods", "systemd" };
	enum identity_runtime rt;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(identity_runtime_name(
		    (enum identity_runtime)i), names[i]);
		assert_int_equal(identity_runtime_from_name(names[i], &rt), 0);
		assert_int_equal(rt, (enum identity_runtime)i);
	}
	assert_string_equal(identity_runtime_name((enum identity_runtime)99),
	    "unknown");
	assert_int_equal(identity_runtime_from_name("libpod", &rt), -EINVAL);
	assert_int_equal(identity_runtime_from_name(NULL, &rt), -EINVAL);
}

/* ---- /proc/<pid>/stat --------------------------------------------------- */

static void
test_parse_stat(void **state)
{
	uint64_t start = 0;
	char comm[17];

	(void)state;
	/* Verbatim from the build host. */
	assert_int_equal(identity_parse_stat("6477 (busybox) S 6467 6477 6477 0 "
	    "-1 4194560 1112 0 1 0 2 1 0 0 20 0 1 0 33765 2322432 332 "
	    "18446744073709551615 4198400 5785993 140733812529824 0 0 0 0 0 0 1 "
	    "0 0 17 1 0 0 0 0 0\n", &start, comm), 0);
	assert_int_equal(start, 33765);
	assert_string_equal(comm, "busybox");

	/* comm holds spaces and parens: only the last ')' ends it. */
	assert_int_equal(identity_parse_stat("42 (a) b (c)) R 1 42 42 0 -1 0 0 0 "
	    "0 0 0 0 0 0 20 0 1 0 987654321 0 0\n", &start, comm), 0);
	assert_int_equal(start, 987654321);
	assert_string_equal(comm, "a) b (c)");

	assert_int_equal(identity_parse_stat("42 (x) S 1 2 3\n", &start, comm),
	    -EINVAL);
	assert_int_equal(identity_parse_stat("42 x S 1\n", &start, comm), -EINVAL);
	assert_int_equal(identity_parse_stat("42 (x) S 1 42 42 0 -1 0 0 0 0 0 0 0 "
	    "0 0 20 0 1 0 nope 0\n", &start, comm), -EINVAL);
}

/* ---- a fake /proc ------------------------------------------------------- */

struct fakeproc {
	char	root[64];
};

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
fake_proc_set(struct fakeproc *fp, pid_t pid, const char *comm,
    unsigned long long start, const char *cgroup)
{
	char path[256], stat[512];

	snprintf(path, sizeof(path), "%s/%d", fp->root, (int)pid);
	mkdir(path, 0700);
	snprintf(stat, sizeof(stat), "%d (%s) S 1 %d %d 0 -1 4194560 1112 0 1 0 "
	    "2 1 0 0 20 0 1 0 %llu 2322432 332 18446744073709551615 0 0\n",
	    (int)pid, comm, (int)pid, (int)pid, start);
	snprintf(path, sizeof(path), "%s/%d/stat", fp->root, (int)pid);
	write_file(path, stat);
	if (cgroup) {
		snprintf(path, sizeof(path), "%s/%d/cgroup", fp->root, (int)pid);
		write_file(path, cgroup);
	}
}

static void
fake_proc_kill(struct fakeproc *fp, pid_t pid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%d/stat", fp->root, (int)pid);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%d/cgroup", fp->root, (int)pid);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%d", fp->root, (int)pid);
	rmdir(path);
}

static int
setup_proc(void **state)
{
	struct fakeproc *fp = calloc(1, sizeof(*fp));

	if (fp == NULL)
		return -1;
	strcpy(fp->root, "/tmp/test_identity.XXXXXX");
	if (mkdtemp(fp->root) == NULL)
		return -1;
	*state = fp;
	return 0;
}

static int
teardown_proc(void **state)
{
	struct fakeproc *fp = *state;
	pid_t pid;

	for (pid = 1; pid < 200; pid++)
		fake_proc_kill(fp, pid);
	rmdir(fp->root);
	free(fp);
	return 0;
}

#define CG_DOCKER_A	"0::/system.slice/docker-" ID_A ".scope\n"
#define CG_PODMAN_B	"0::/machine.slice/libpod-" ID_B ".scope\n"

/* The cache keeps what the checks need, and what the engine check found. */
static void
test_cache_keeps_verification(void **state)
{
	struct fakeproc *fp = *state;
	struct identity_cache *ic;
	struct caller c;

	ic = identity_cache_new(64, 0);
	assert_non_null(ic);
	assert_int_equal(identity_cache_set_proc_root(ic, fp->root), 0);
	fake_proc_set(fp, 42, "payment-api", 1000, CG_DOCKER_A);
	assert_int_equal(identity_lookup(ic, 42, 1000, 1000, &c), 0);
	assert_true(c.cgroup_anchor > 0);
	assert_false(c.engine_checked);
	/* A hit gives the same anchor (the engine check compares it). */
	assert_int_equal(identity_lookup(ic, 42, 1000, 1000, &c), 0);
	assert_int_equal(c.cgroup_anchor, strlen(c.cgroup));

	c.engine_checked = true;
	snprintf(c.refused, sizeof(c.refused), "not in the container's pid "
	    "namespace");
	c.runtime = IDENTITY_RUNTIME_UNKNOWN;
	assert_int_equal(identity_cache_note(ic, &c), 0);
	assert_int_equal(identity_lookup(ic, 42, 1000, 1000, &c), 0);
	assert_true(c.engine_checked);
	assert_string_equal(c.container_id, "");
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_UNKNOWN);
	assert_non_null(strstr(c.refused, "pid namespace"));
	/* Another process with the pid: nothing noted is inherited. */
	fake_proc_set(fp, 42, "sh", 2000, CG_DOCKER_A);
	assert_int_equal(identity_lookup(ic, 42, 1000, 1000, &c), 0);
	assert_false(c.engine_checked);
	assert_string_equal(c.refused, "");
	assert_string_equal(c.container_id, ID_A);
	c.start_time = 1;
	assert_int_equal(identity_cache_note(ic, &c), -ESRCH);
	identity_cache_free(ic);
}

static void
test_cache_hit_and_pid_reuse(void **state)
{
	struct fakeproc *fp = *state;
	struct identity_cache *ic;
	struct identity_cache_stats st;
	struct caller c;

	ic = identity_cache_new(64, 0);
	assert_non_null(ic);
	assert_int_equal(identity_cache_set_proc_root(ic, fp->root), 0);

	fake_proc_set(fp, 42, "payment-api", 1000, CG_DOCKER_A);
	assert_int_equal(identity_lookup(ic, 42, 1000, 1000, &c), 0);
	assert_int_equal(c.pid, 42);
	assert_int_equal(c.start_time, 1000);
	assert_string_equal(c.comm, "payment-api");
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_DOCKER);
	assert_string_equal(c.container_id, ID_A);

	/*
	 * Change the cgroup file behind the cache's back: a hit must not
	 * re-read it (that is the point of caching) ...
	 */
	fake_proc_set(fp, 42, "payment-api", 1000, CG_PODMAN_B);
	assert_int_equal(identity_lookup(ic, 42, 0, 0, &c), 0);
	assert_string_equal(c.container_id, ID_A);
	/* ... and uid/gid come from the request, never from the cache. */
	assert_int_equal(c.uid, 0);
	assert_int_equal(c.gid, 0);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);

	/* The pid is reused by a process started later: a new identity. */
	fake_proc_set(fp, 42, "sh", 2000, CG_PODMAN_B);
	assert_int_equal(identity_lookup(ic, 42, 33, 33, &c), 0);
	assert_int_equal(c.start_time, 2000);
	assert_string_equal(c.comm, "sh");
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_PODMAN);
	assert_string_equal(c.container_id, ID_B);
	assert_int_equal(c.uid, 33);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.entries, 1);

	/* Reused by a host process: nothing of B survives. */
	fake_proc_set(fp, 42, "bash", 3000, "0::/user.slice/user-0.slice/session-1.scope\n");
	assert_int_equal(identity_lookup(ic, 42, 0, 0, &c), 0);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_HOST);
	assert_string_equal(c.container_id, "");

	/* comm is read on every lookup (prctl can change it). */
	fake_proc_set(fp, 42, "renamed", 3000, NULL);
	assert_int_equal(identity_lookup(ic, 42, 0, 0, &c), 0);
	assert_string_equal(c.comm, "renamed");

	identity_cache_free(ic);
}

static void
test_vanished_pid(void **state)
{
	struct fakeproc *fp = *state;
	struct identity_cache *ic;
	struct caller c;

	ic = identity_cache_new(8, 0);
	assert_non_null(ic);
	assert_int_equal(identity_cache_set_proc_root(ic, fp->root), 0);

	fake_proc_set(fp, 7, "x", 10, CG_DOCKER_A);
	assert_int_equal(identity_lookup(ic, 7, 0, 0, &c), 0);
	fake_proc_kill(fp, 7);
	/* Cached or not, a process that is gone has no identity. */
	assert_int_equal(identity_lookup(ic, 7, 0, 0, &c), -ESRCH);
	assert_string_equal(c.container_id, "");
	assert_int_equal(identity_lookup(ic, 8, 0, 0, &c), -ESRCH);
	assert_int_equal(identity_lookup(ic, 0, 0, 0, &c), -ESRCH);
	assert_int_equal(identity_lookup(ic, -1, 0, 0, &c), -ESRCH);
	assert_int_equal(identity_read(fp->root, 7, 0, 0, &c), -ESRCH);

	/* A stat without a cgroup file: the process died between reads. */
	fake_proc_set(fp, 9, "y", 10, NULL);
	assert_int_equal(identity_lookup(ic, 9, 0, 0, &c), -ESRCH);

	/* An unreadable cgroup file is not an identity either. */
	fake_proc_set(fp, 10, "z", 10, "not a cgroup file\n");
	assert_int_equal(identity_lookup(ic, 10, 0, 0, &c), -EINVAL);
	identity_cache_free(ic);
}

static void
test_cache_bounds(void **state)
{
	struct fakeproc *fp = *state;
	struct identity_cache *ic;
	struct identity_cache_stats st;
	struct caller c;
	pid_t pid;

	ic = identity_cache_new(4, 0);
	assert_non_null(ic);
	assert_int_equal(identity_cache_set_proc_root(ic, fp->root), 0);
	for (pid = 100; pid < 110; pid++) {
		fake_proc_set(fp, pid, "w", 5, CG_DOCKER_A);
		assert_int_equal(identity_lookup(ic, pid, 0, 0, &c), 0);
	}
	identity_cache_stats(ic, &st);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.evictions, 6);
	assert_int_equal(st.misses, 10);

	/* 106..109 are the most recent: hits. Touch 106 to make it newest. */
	assert_int_equal(identity_lookup(ic, 106, 0, 0, &c), 0);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.hits, 1);
	/* 100 was evicted: a miss, which evicts 107 (now the oldest). */
	assert_int_equal(identity_lookup(ic, 100, 0, 0, &c), 0);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.misses, 11);
	assert_int_equal(identity_lookup(ic, 106, 0, 0, &c), 0);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(identity_lookup(ic, 107, 0, 0, &c), 0);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.misses, 12);
	assert_int_equal(st.entries, 4);

	identity_cache_flush(ic);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.entries, 0);
	identity_cache_free(ic);

	/* max 0: no caching at all, still correct answers. */
	ic = identity_cache_new(0, 0);
	assert_non_null(ic);
	assert_int_equal(identity_cache_set_proc_root(ic, fp->root), 0);
	assert_int_equal(identity_lookup(ic, 100, 0, 0, &c), 0);
	assert_int_equal(identity_lookup(ic, 100, 0, 0, &c), 0);
	assert_string_equal(c.container_id, ID_A);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.entries, 0);
	identity_cache_free(ic);
	identity_cache_free(NULL);
}

static void
test_cache_ttl(void **state)
{
	struct fakeproc *fp = *state;
	struct identity_cache *ic;
	struct identity_cache_stats st;
	struct timespec ts = { 0, 60 * 1000 * 1000 };
	struct caller c;

	ic = identity_cache_new(8, 20);
	assert_non_null(ic);
	assert_int_equal(identity_cache_set_proc_root(ic, fp->root), 0);
	fake_proc_set(fp, 50, "m", 77, CG_DOCKER_A);
	assert_int_equal(identity_lookup(ic, 50, 0, 0, &c), 0);
	/* The runtime moves the process: seen once the entry expires. */
	fake_proc_set(fp, 50, "m", 77, CG_PODMAN_B);
	nanosleep(&ts, NULL);
	assert_int_equal(identity_lookup(ic, 50, 0, 0, &c), 0);
	assert_string_equal(c.container_id, ID_B);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.hits, 0);
	identity_cache_free(ic);
}

struct hammer {
	struct identity_cache	*ic;
	int			 fails;
};

static void *
hammer_run(void *arg)
{
	struct hammer *h = arg;
	struct caller c;
	int i;
	pid_t pid;

	for (i = 0; i < 3000; i++) {
		pid = 120 + (i % 12);
		if (identity_lookup(h->ic, pid, (uid_t)i, 0, &c) != 0 ||
		    c.uid != (uid_t)i ||
		    strcmp(c.container_id, (pid % 2) ? ID_B : ID_A) != 0)
			h->fails++;
	}
	return NULL;
}

static void
test_cache_threads(void **state)
{
	struct fakeproc *fp = *state;
	struct hammer h[8];
	pthread_t t[8];
	struct identity_cache *ic;
	struct identity_cache_stats st;
	pid_t pid;
	int i;

	ic = identity_cache_new(5, 0);	/* smaller than the working set */
	assert_non_null(ic);
	assert_int_equal(identity_cache_set_proc_root(ic, fp->root), 0);
	for (pid = 120; pid < 132; pid++)
		fake_proc_set(fp, pid, "t", 9, (pid % 2) ? CG_PODMAN_B : CG_DOCKER_A);
	for (i = 0; i < 8; i++) {
		h[i].ic = ic;
		h[i].fails = 0;
		assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].fails, 0);
	}
	identity_cache_stats(ic, &st);
	assert_true(st.entries <= 5);
	assert_int_equal(st.hits + st.misses, 8 * 3000);
	identity_cache_free(ic);
}

static void
test_real_self(void **state)
{
	struct caller c;

	(void)state;
	/* Whatever this runs in, our own entry must read and parse. */
	assert_int_equal(identity_read(NULL, getpid(), getuid(), getgid(), &c), 0);
	assert_int_equal(c.pid, getpid());
	assert_true(c.start_time > 0);
	{
		char self[17] = "";

		assert_int_equal(prctl(PR_GET_NAME, self), 0);
		assert_string_equal(c.comm, self);
	}
	assert_true(c.cgroup[0] == '/');
}

/* ---- pinned entries: real processes ------------------------------------- */

struct kid {
	pid_t	pid;
	int	go;	/* write end: 'n' renames the child, anything else ends it */
	int	ready;	/* read end: a byte once the child took its name */
};

/* In the child: take the name, report ready, exit when told. */
static void
kid_body(const char *name, int ready, int go)
{
	char ch;

	prctl(PR_SET_NAME, name, 0, 0, 0);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	if (read(go, &ch, 1) == 1 && ch == 'n') {
		prctl(PR_SET_NAME, "renamed-kid", 0, 0, 0);
		if (write(ready, "r", 1) != 1)
			_exit(1);
		if (read(go, &ch, 1) < 0)
			_exit(1);
	}
	_exit(0);
}

/*
 * Start a child named `name`, with pid `want` when not 0 (clone3's set_tid,
 * which needs CAP_SYS_ADMIN). 0, or -errno from the clone.
 */
static int
kid_start(struct kid *k, const char *name, pid_t want)
{
	struct clone_args ca;
	int ready[2], go[2];
	pid_t pid;
	char ch;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	if (want) {
		memset(&ca, 0, sizeof(ca));
		ca.exit_signal = SIGCHLD;
		ca.set_tid = (uint64_t)(uintptr_t)&want;
		ca.set_tid_size = 1;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	} else
		pid = fork();
	if (pid == -1) {
		int err = errno;

		close(ready[0]);
		close(ready[1]);
		close(go[0]);
		close(go[1]);
		return -err;
	}
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		kid_body(name, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &ch, 1), 1);
	k->pid = pid;
	k->go = go[1];
	k->ready = ready[0];
	return 0;
}

static void
kid_stop(struct kid *k)
{
	int st;

	assert_int_equal(write(k->go, "x", 1), 1);
	close(k->go);
	close(k->ready);
	assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
}

static void
test_pinned_real_processes(void **state)
{
	struct identity_cache *ic;
	struct identity_cache_stats st;
	struct timespec tick = { 0, 30 * 1000 * 1000 };
	struct caller c;
	struct kid a, b;
	uint64_t a_start;
	pid_t a_pid;
	int r;

	(void)state;
	ic = identity_cache_new(8, 0);
	assert_non_null(ic);
	assert_int_equal(kid_start(&a, "pin-a", 0), 0);
	assert_int_equal(identity_lookup(ic, a.pid, 1, 1, &c), 0);
	assert_string_equal(c.comm, "pin-a");
	a_start = c.start_time;
	assert_true(a_start > 0);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.pinned, 1);

	/* A hit: same identity, comm still read fresh through the pin. */
	assert_int_equal(identity_lookup(ic, a.pid, 1, 1, &c), 0);
	assert_int_equal(c.start_time, a_start);
	assert_string_equal(c.comm, "pin-a");
	{
		char ch;

		assert_int_equal(write(a.go, "n", 1), 1);
		assert_int_equal(read(a.ready, &ch, 1), 1);
	}
	assert_int_equal(identity_lookup(ic, a.pid, 1, 1, &c), 0);
	assert_string_equal(c.comm, "renamed-kid");
	identity_cache_stats(ic, &st);
	assert_int_equal(st.misses, 1);
	assert_true(st.hits >= 2);

	/*
	 * The process exits and is reaped; another takes its pid (where we
	 * may choose the pid). The entry of the first must not be hit.
	 */
	a_pid = a.pid;
	kid_stop(&a);
	nanosleep(&tick, NULL);		/* a later start time, one tick at least */
	r = kid_start(&b, "pin-b", a_pid);
	if (r == 0) {
		assert_int_equal(b.pid, a_pid);
		identity_cache_stats(ic, &st);
		assert_int_equal(identity_lookup(ic, a_pid, 2, 2, &c), 0);
		assert_string_equal(c.comm, "pin-b");
		assert_true(c.start_time > a_start);
		{
			struct identity_cache_stats st2;

			identity_cache_stats(ic, &st2);
			assert_int_equal(st2.hits, st.hits);
			assert_int_equal(st2.misses, st.misses + 1);
			assert_int_equal(st2.pinned, 1);
		}
		kid_stop(&b);
	} else
		/*
		 * The pid cannot be chosen without CAP_SYS_ADMIN, or without
		 * clone3 (kernels before 5.5, valgrind).
		 */
		assert_true(r == -EPERM || r == -ENOSYS);
	/* Gone: no identity, and the entry and its descriptor are dropped. */
	assert_int_equal(identity_lookup(ic, a_pid, 0, 0, &c), -ESRCH);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.pinned, 0);
	identity_cache_free(ic);
}

static void
test_pin_budget(void **state)
{
	struct identity_cache *ic;
	struct identity_cache_stats st;
	struct kid k[3];
	struct caller c;
	int i;

	(void)state;
	ic = identity_cache_new(8, 0);
	assert_non_null(ic);
	identity_cache_set_pin_max(ic, 2);
	for (i = 0; i < 3; i++) {
		assert_int_equal(kid_start(&k[i], "budget", 0), 0);
		assert_int_equal(identity_lookup(ic, k[i].pid, 0, 0, &c), 0);
	}
	identity_cache_stats(ic, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.pinned, 2);
	/* The unpinned entry still hits, by its start time. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(identity_lookup(ic, k[i].pid, 0, 0, &c), 0);
		assert_string_equal(c.comm, "budget");
	}
	identity_cache_stats(ic, &st);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 3);
	for (i = 0; i < 3; i++)
		kid_stop(&k[i]);
	/* Pinned or not, a reaped process has no identity. */
	for (i = 0; i < 3; i++)
		assert_int_equal(identity_lookup(ic, k[i].pid, 0, 0, &c), -ESRCH);
	identity_cache_stats(ic, &st);
	assert_int_equal(st.pinned, 0);
	assert_int_equal(st.hits, 3);
	identity_cache_free(ic);
}

/* ---- what identity_verify reads ---------------------------------------- */

static void
test_verify_helpers(void **state)
{
	pid_t last = 0;

	(void)state;
	assert_int_equal(identity_parse_nspid("Name:\tx\nNSpid:\t812\n"
	    "NSpgid:\t1\n", &last), 1);
	assert_int_equal(last, 812);
	assert_int_equal(identity_parse_nspid("NSpid:\t812\t7\t1\n", &last), 3);
	assert_int_equal(last, 1);
	assert_int_equal(identity_parse_nspid("Name:\tx\n", NULL), 0);
	assert_int_equal(identity_parse_nspid("NSpid:\t8x\n", NULL), 0);

	assert_int_equal(identity_parse_first_mount("27 1 0:21 / / rw - x\n"),
	    27);
	assert_int_equal(identity_parse_first_mount(""), -1);
	assert_int_equal(identity_parse_first_mount("x 1"), -1);

	assert_true(identity_host_cgroup("/"));
	assert_true(identity_host_cgroup("/init.scope"));
	assert_true(identity_host_cgroup("/system.slice/cron.service"));
	assert_true(identity_host_cgroup("/user.slice/user-1000.slice"));
	assert_false(identity_host_cgroup("/lxc.payload.x"));
	assert_false(identity_host_cgroup("/machine.slice/systemd-nspawn@x."
	    "service/payload"));
	assert_false(identity_host_cgroup("/system.slicex"));
	assert_false(identity_host_cgroup(""));
}

/* A fake /proc and cgroup tree: what the checks see, without a kernel. */
static void
put(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static void
test_verify_fake_trees(void **state)
{
	struct identity_trust t = { false, NULL };
	char tmpl[] = "/tmp/sfs-idv-XXXXXX", proc[64], cg[64], d[4096];
	struct caller c;

	(void)state;
	assert_non_null(mkdtemp(tmpl));
	snprintf(proc, sizeof(proc), "%s/proc", tmpl);
	snprintf(cg, sizeof(cg), "%s/cg", tmpl);
	assert_int_equal(mkdir(proc, 0755), 0);
	assert_int_equal(mkdir(cg, 0755), 0);
	snprintf(d, sizeof(d), "%s/1", proc);
	assert_int_equal(mkdir(d, 0755), 0);
	put(d, "mountinfo", "27 1 0:21 / / rw - ext4 x rw\n");
	snprintf(d, sizeof(d), "%s/77", proc);
	assert_int_equal(mkdir(d, 0755), 0);
	put(d, "status", "Name:\tx\nNSpid:\t77\n");
	put(d, "mountinfo", "27 1 0:21 / / rw - ext4 x rw\n");

	/* Host: pid 1's namespaces and a host cgroup. */
	parse("0::/system.slice/cron.service\n", &c);
	c.pid = 77;
	assert_int_equal(identity_verify(proc, &t, &c), 0);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_SYSTEMD);
	/* Another mount namespace: unknown. */
	put(d, "mountinfo", "3100 3000 0:21 / / rw - ext4 x rw\n");
	assert_int_equal(identity_verify(proc, &t, &c), 0);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_UNKNOWN);
	assert_string_equal(c.unit, "");
	/* Another pid namespace: unknown. */
	put(d, "mountinfo", "27 1 0:21 / / rw - ext4 x rw\n");
	put(d, "status", "Name:\tx\nNSpid:\t77\t1\n");
	parse("0::/\n", &c);
	c.pid = 77;
	assert_int_equal(identity_verify(proc, &t, &c), 0);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_UNKNOWN);

	/* A container whose cgroup is root's (when the test runs as root). */
	if (geteuid() == 0) {
		char pd[sizeof(d)];

		snprintf(pd, sizeof(pd), "%s", d);
		t.cgroup_root = cg;
		snprintf(d, sizeof(d), "%s/system.slice", cg);
		assert_int_equal(mkdir(d, 0755), 0);
		snprintf(d, sizeof(d), "%s/system.slice/docker-" ID_A ".scope",
		    cg);
		assert_int_equal(mkdir(d, 0755), 0);
		parse("0::/system.slice/docker-" ID_A ".scope/inner\n", &c);
		assert_int_equal(identity_verify(proc, &t, &c), 0);
		assert_string_equal(c.container_id, ID_A);
		assert_string_equal(c.refused, "");
		/* The same, once the parent is another user's. */
		snprintf(d, sizeof(d), "%s/system.slice", cg);
		assert_int_equal(chown(d, 65534, 65534), 0);
		assert_int_equal(identity_verify(proc, &t, &c), 0);
		assert_string_equal(c.container_id, "");
		assert_int_equal(c.runtime, IDENTITY_RUNTIME_UNKNOWN);
		assert_non_null(strstr(c.refused, "owned by a user at "
		    "/system.slice"));
		/* ... believed as that user's with rootless on. */
		t.rootless = true;
		parse("0::/system.slice/docker-" ID_A ".scope/inner\n", &c);
		assert_int_equal(identity_verify(proc, &t, &c), 0);
		assert_string_equal(c.container_id, ID_A);
		assert_true(c.rootless);
		assert_int_equal(c.cgroup_owner, 65534);
		/* Writable by others: never, rootless or not. */
		assert_int_equal(chmod(d, 0777), 0);
		assert_int_equal(identity_verify(proc, &t, &c), 0);
		assert_string_equal(c.container_id, "");
		assert_true(c.refused[0] != '\0');
		assert_int_equal(chown(d, 0, 0), 0);
		parse("0::/system.slice/docker-" ID_A ".scope/inner\n", &c);
		assert_int_equal(identity_verify(proc, &t, &c), 0);
		assert_string_equal(c.container_id, "");
		assert_non_null(strstr(c.refused, "writable"));
		assert_int_equal(chmod(d, 0755), 0);
		t.rootless = false;
		snprintf(d, sizeof(d), "%s", pd);
	}

	/* Below user@: refused without rootless, the unit kept. */
	parse("0::/user.slice/user-1000.slice/user@1000.service/user.slice/"
	    "libpod-" ID_B ".scope\n", &c);
	c.pid = 77;
	assert_int_equal(identity_verify(proc, &t, &c), 0);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_SYSTEMD);
	assert_string_equal(c.unit, "user@1000.service");
	assert_string_equal(c.container_id, "");
	assert_non_null(strstr(c.refused, "user manager"));
	/* A user's own process there (no container name) is that user's. */
	put(d, "status", "Name:\tx\nNSpid:\t77\n");
	parse("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
	    "x.scope\n", &c);
	c.pid = 77;
	assert_int_equal(identity_verify(proc, &t, &c), 0);
	assert_int_equal(c.runtime, IDENTITY_RUNTIME_SYSTEMD);
	assert_string_equal(c.refused, "");

	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		assert_int_equal(system(cmd), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker_systemd_hybrid),
		cmocka_unit_test(test_docker_cgroupfs_hybrid),
		cmocka_unit_test(test_docker_v2_only),
		cmocka_unit_test(test_podman_cgroupfs_real),
		cmocka_unit_test(test_podman_systemd_scope),
		cmocka_unit_test(test_podman_conmon_is_not_the_container),
		cmocka_unit_test(test_containerd_cri_pod),
		cmocka_unit_test(test_containerd_colon_form),
		cmocka_unit_test(test_crio_and_conmon),
		cmocka_unit_test(test_kubepods_cgroupfs),
		cmocka_unit_test(test_kubepods_docker_systemd),
		cmocka_unit_test(test_systemd_service),
		cmocka_unit_test(test_systemd_layouts_each_line_kind),
		cmocka_unit_test(test_host_process),
		cmocka_unit_test(test_v2_preferred),
		cmocka_unit_test(test_outermost_container_wins),
		cmocka_unit_test(test_user_manager_subtree_untrusted),
		cmocka_unit_test(test_near_misses),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_long_path_not_truncated),
		cmocka_unit_test(test_runtime_names),
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_verify_helpers),
		cmocka_unit_test(test_verify_fake_trees),
		cmocka_unit_test_setup_teardown(test_cache_keeps_verification,
		    setup_proc, teardown_proc),
		cmocka_unit_test_setup_teardown(test_cache_hit_and_pid_reuse,
		    setup_proc, teardown_proc),
		cmocka_unit_test_setup_teardown(test_vanished_pid,
		    setup_proc, teardown_proc),
		cmocka_unit_test_setup_teardown(test_cache_bounds,
		    setup_proc, teardown_proc),
		cmocka_unit_test_setup_teardown(test_cache_ttl,
		    setup_proc, teardown_proc),
		cmocka_unit_test_setup_teardown(test_cache_threads,
		    setup_proc, teardown_proc),
		cmocka_unit_test(test_real_self),
		cmocka_unit_test(test_pinned_real_processes),
		cmocka_unit_test(test_pin_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
