/*
 * policy: rule parsing (every error names its key path), caller matching,
 * ordering (first deciding rule wins, deny rules, default deny), host
 * handling, and globbing of secret names and cgroup paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <secretsfs/policy.h>

#define ID_A	"a8ab54591efe0ae52aff7ed079c7e69d79b1d785cf5c051f0cf48c42cfd771a1"
#define ID_B	"104c997c3b94272f24ec155a464167cde8223d5fbc4f3d2d1f6c6e7ef07b5911"
#define POD_U	"1b5a824d-1f8a-4e99-ba24-8767f38c9c2c"

/* ---- helpers ------------------------------------------------------------ */

static struct policy *
load(const char *text)
{
	struct cfg_err err;
	struct policy *p = NULL;
	json_error_t jerr;
	json_t *j;
	int r;

	j = json_loads(text, 0, &jerr);
	if (j == NULL)
		fail_msg("bad test JSON: %s", jerr.text);
	memset(&err, 0, sizeof(err));
	r = policy_from_json(j, "rules", &p, &err);
	json_decref(j);
	if (r != 0)
		fail_msg("policy rejected: %s: %s", err.path, err.msg);
	assert_non_null(p);
	return p;
}

/* Parse text, expect -EINVAL with exactly this path. */
static void
reject(const char *text, const char *path, const char *msg_part)
{
	struct cfg_err err;
	struct policy *p = (struct policy *)0x1;
	json_error_t jerr;
	json_t *j;

	/* Whatever flags config loads with, an embedded NUL is refused. */
	j = json_loads(text, JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		fail_msg("bad test JSON: %s", jerr.text);
	memset(&err, 0, sizeof(err));
	assert_int_equal(policy_from_json(j, "rules", &p, &err), -EINVAL);
	json_decref(j);
	assert_null(p);
	assert_string_equal(err.path, path);
	assert_true(err.msg[0] != '\0');
	if (msg_part && strstr(err.msg, msg_part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
}

static struct caller
container(enum identity_runtime rt, const char *id, const char *name,
    const char *image)
{
	struct caller c;

	memset(&c, 0, sizeof(c));
	c.pid = 4242;
	c.uid = 1000;
	c.gid = 1000;
	c.runtime = rt;
	snprintf(c.container_id, sizeof(c.container_id), "%s", id);
	snprintf(c.container_name, sizeof(c.container_name), "%s", name);
	snprintf(c.image, sizeof(c.image), "%s", image);
	snprintf(c.cgroup, sizeof(c.cgroup), "/system.slice/docker-%s.scope", id);
	return c;
}

static struct caller
host(uid_t uid)
{
	struct caller c;

	memset(&c, 0, sizeof(c));
	c.pid = 77;
	c.uid = uid;
	c.gid = uid;
	c.runtime = IDENTITY_RUNTIME_HOST;
	strcpy(c.cgroup, "/user.slice/user-1000.slice/session-2.scope");
	return c;
}

static void
add_label(struct caller *c, const char *k, const char *v)
{
	snprintf(c->labels[c->n_labels].key, sizeof(c->labels[0].key), "%s", k);
	snprintf(c->labels[c->n_labels].value, sizeof(c->labels[0].value), "%s", v);
	c->n_labels++;
}

static bool
allowed(const struct policy *p, const struct caller *c, const char *name)
{
	struct policy_decision d;

	assert_int_equal(policy_decide(p, c, name, &d), 0);
	assert_non_null(d.rule_id);
	return d.allowed;
}

static const char *
decider(const struct policy *p, const struct caller *c, const char *name)
{
	struct policy_decision d;

	assert_int_equal(policy_decide(p, c, name, &d), 0);
	return d.rule_id;
}

/* ---- parsing ------------------------------------------------------------ */

static void
test_parse_errors(void **state)
{
	(void)state;
	reject("{}", "rules", "list");
	reject("[1]", "rules[0]", "object");
	reject("[{\"allow\":[\"x\"]}]", "rules[0].match", "missing");
	reject("[{\"match\":{\"any\":true},\"allow\":[\"x\"]},"
	    "{\"match\":{},\"allow\":[\"x\"]}]", "rules[1].match", "\"any\": true");
	reject("[{\"match\":[],\"allow\":[\"x\"]}]", "rules[0].match", "object");
	reject("[{\"match\":{\"any\":true},\"allw\":[\"x\"]}]", "rules[0].allw",
	    "unknown key");
	reject("[{\"match\":{\"container\":\"x\"},\"allow\":[\"x\"]}]",
	    "rules[0].match.container", "unknown key");
	reject("[{\"match\":{\"any\":true}}]", "rules[0]", "allow");
	reject("[{\"match\":{\"any\":true},\"allow\":[]}]", "rules[0].allow",
	    "empty");
	reject("[{\"match\":{\"any\":true},\"allow\":\"db_*\"}]",
	    "rules[0].allow", "list");
	reject("[{\"match\":{\"any\":true},\"allow\":[\"a\",\"\"]}]",
	    "rules[0].allow[1]", "empty");
	reject("[{\"match\":{\"any\":true},\"deny\":[\"a\",3]}]",
	    "rules[0].deny[1]", "string");
	reject("[{\"match\":{\"any\":true},\"allow\":[\"db\\u0000*\"]}]",
	    "rules[0].allow[0]", "string");
	reject("[{\"id\":\"\",\"match\":{\"any\":true},\"allow\":[\"x\"]}]",
	    "rules[0].id", NULL);
	reject("[{\"id\":7,\"match\":{\"any\":true},\"allow\":[\"x\"]}]",
	    "rules[0].id", NULL);
	reject("[{\"id\":\"default-deny\",\"match\":{\"any\":true},"
	    "\"allow\":[\"x\"]}]", "rules[0].id", "reserved");
	reject("[{\"id\":\"a\",\"match\":{\"any\":true},\"allow\":[\"x\"]},"
	    "{\"id\":\"a\",\"match\":{\"any\":true},\"allow\":[\"y\"]}]",
	    "rules[1].id", "duplicate");
	/* A default id collides with an explicit one just the same. */
	reject("[{\"id\":\"rules[1]\",\"match\":{\"any\":true},\"allow\":[\"x\"]},"
	    "{\"match\":{\"any\":true},\"allow\":[\"y\"]}]",
	    "rules[1].id", "duplicate");
}

static void
test_parse_match_errors(void **state)
{
	(void)state;
	reject("[{\"match\":{\"any\":false},\"allow\":[\"x\"]}]",
	    "rules[0].match.any", "true");
	reject("[{\"match\":{\"any\":true,\"host\":true},\"allow\":[\"x\"]}]",
	    "rules[0].match.any", "exclude");
	reject("[{\"match\":{\"host\":\"yes\"},\"allow\":[\"x\"]}]",
	    "rules[0].match.host", NULL);
	reject("[{\"match\":{\"any\":true},\"allow\":[\"x\"]},"
	    "{\"match\":{\"any\":true},\"allow\":[\"x\"]},"
	    "{\"match\":{\"label\":[\"a\"]},\"allow\":[\"x\"]}]",
	    "rules[2].match.label", "object");
	reject("[{\"match\":{\"label\":{}},\"allow\":[\"x\"]}]",
	    "rules[0].match.label", "at least one");
	reject("[{\"match\":{\"label\":{\"com.docker.compose.service\":5}},"
	    "\"allow\":[\"x\"]}]",
	    "rules[0].match.label.\"com.docker.compose.service\"", NULL);
	reject("[{\"match\":{\"label\":{\"tier\":[\"a\",null]}},"
	    "\"allow\":[\"x\"]}]", "rules[0].match.label.tier[1]", "string");
	reject("[{\"match\":{\"uid\":-1},\"allow\":[\"x\"]}]",
	    "rules[0].match.uid", "between");
	reject("[{\"match\":{\"uid\":4294967295},\"allow\":[\"x\"]}]",
	    "rules[0].match.uid", "between");
	reject("[{\"match\":{\"uid\":[0,\"1000\"]},\"allow\":[\"x\"]}]",
	    "rules[0].match.uid[1]", "number");
	reject("[{\"match\":{\"gid\":[]},\"allow\":[\"x\"]}]",
	    "rules[0].match.gid", "empty");
	reject("[{\"match\":{\"gid\":1.5},\"allow\":[\"x\"]}]",
	    "rules[0].match.gid", NULL);
	reject("[{\"match\":{\"container_id\":\"a8ab54591efe\"},\"allow\":[\"x\"]},"
	    "{\"match\":{\"container_id\":\"a8ab5459\"},\"allow\":[\"x\"]}]",
	    "rules[1].match.container_id", "12 to 64");
	reject("[{\"match\":{\"container_id\":\"a8ab54591ef*\"},\"allow\":[\"x\"]}]",
	    "rules[0].match.container_id", "hex");
	reject("[{\"match\":{\"runtime\":[\"docker\",\"libpod\"]},"
	    "\"allow\":[\"x\"]}]", "rules[0].match.runtime[1]", "unknown runtime");
	reject("[{\"match\":{\"image\":\"\"},\"allow\":[\"x\"]}]",
	    "rules[0].match.image", "empty");
	reject("[{\"match\":{\"container_name\":[]},\"allow\":[\"x\"]}]",
	    "rules[0].match.container_name", "empty");
}

static void
test_parse_never_matches(void **state)
{
	(void)state;
	/* Container keys on a host-only match: always a mistake. */
	reject("[{\"match\":{\"host\":true,\"container_name\":\"x\"},"
	    "\"allow\":[\"x\"]}]", "rules[0].match.host", "never");
	reject("[{\"match\":{\"host\":true,\"label\":{\"a\":\"b\"}},"
	    "\"allow\":[\"x\"]}]", "rules[0].match.host", "never");
	reject("[{\"match\":{\"host\":true,\"runtime\":\"docker\"},"
	    "\"allow\":[\"x\"]}]", "rules[0].match.host", "never");
	/* Host-only keys without "host": true. */
	reject("[{\"match\":{\"runtime\":\"systemd\"},\"allow\":[\"x\"]}]",
	    "rules[0].match.runtime", "host");
	reject("[{\"match\":{\"unit\":\"backup.service\"},\"allow\":[\"x\"]}]",
	    "rules[0].match.unit", "host");
	reject("[{\"match\":{\"host\":false,\"runtime\":\"host\"},"
	    "\"allow\":[\"x\"]}]", "rules[0].match.runtime", "host");
}

static void
test_parse_custom_path_and_null_err(void **state)
{
	struct cfg_err err;
	struct policy *p;
	json_t *j;

	(void)state;
	j = json_loads("[{\"match\":{\"any\":true},\"allow\":[\"x\"]},"
	    "{\"match\":{\"uid\":\"0\"},\"allow\":[\"x\"]}]", 0, NULL);
	assert_non_null(j);
	memset(&err, 0, sizeof(err));
	assert_int_equal(policy_from_json(j, "policy.rules", &p, &err), -EINVAL);
	assert_string_equal(err.path, "policy.rules[1].match.uid");
	/* err may be NULL: still refused. */
	assert_int_equal(policy_from_json(j, NULL, &p, NULL), -EINVAL);
	assert_null(p);
	json_decref(j);
}

static void
test_parse_ok_and_ids(void **state)
{
	struct policy *p;

	(void)state;
	p = load("[{\"id\":\"payment-api\",\"match\":{\"container_name\":"
	    "\"payment-*\"},\"allow\":[\"db_*\",\"stripe/*\"]},"
	    "{\"match\":{\"host\":true,\"uid\":0},\"deny\":[\"*\"]},"
	    "{\"match\":{\"any\":true,\"gid\":[10,20]},\"allow\":[\"x\"],"
	    "\"deny\":[\"y\"]}]");
	assert_int_equal(policy_rule_count(p), 3);
	assert_string_equal(policy_rule_id(p, 0), "payment-api");
	assert_string_equal(policy_rule_id(p, 1), "rules[1]");
	assert_string_equal(policy_rule_id(p, 2), "rules[2]");
	assert_null(policy_rule_id(p, 3));
	policy_free(p);
	policy_free(NULL);
	assert_int_equal(policy_rule_count(NULL), 0);
}

static void
test_empty_policies_deny(void **state)
{
	struct caller c = container(IDENTITY_RUNTIME_DOCKER, ID_A, "x", "y");
	struct policy_decision d;
	struct policy *p;
	json_t *null = json_null();

	(void)state;
	assert_int_equal(policy_from_json(NULL, NULL, &p, NULL), 0);
	assert_int_equal(policy_rule_count(p), 0);
	assert_false(allowed(p, &c, "db_password"));
	policy_free(p);
	assert_int_equal(policy_from_json(null, NULL, &p, NULL), 0);
	policy_free(p);
	json_decref(null);
	p = load("[]");
	assert_int_equal(policy_decide(p, &c, "db_password", &d), 0);
	assert_false(d.allowed);
	assert_string_equal(d.rule_id, POLICY_DEFAULT_DENY_ID);
	assert_int_equal(d.rule_index, -1);
	policy_free(p);

	/* A NULL policy denies; NULL arguments deny and say so. */
	assert_int_equal(policy_decide(NULL, &c, "x", &d), 0);
	assert_false(d.allowed);
	assert_int_equal(policy_decide(NULL, NULL, "x", &d), -EINVAL);
	assert_false(d.allowed);
	assert_string_equal(d.rule_id, POLICY_DEFAULT_DENY_ID);
	assert_int_equal(policy_decide(NULL, &c, NULL, &d), -EINVAL);
	assert_int_equal(policy_decide(NULL, &c, "x", NULL), -EINVAL);
}

/* ---- deciding ----------------------------------------------------------- */

static void
test_first_rule_wins(void **state)
{
	struct caller pay = container(IDENTITY_RUNTIME_DOCKER, ID_A,
	    "payment-api", "registry.example.com/shop/payment-api:2.3.1");
	struct caller web = container(IDENTITY_RUNTIME_DOCKER, ID_B, "web",
	    "nginx:1.25");
	struct policy_decision d;
	struct policy *p;

	(void)state;
	p = load("[{\"id\":\"payment\",\"match\":{\"container_name\":\"payment-*\"},"
	    "\"allow\":[\"db_*\",\"stripe/*\"]},"
	    "{\"id\":\"no-db\",\"match\":{\"host\":false},\"deny\":[\"db_*\"]},"
	    "{\"id\":\"all\",\"match\":{\"host\":false},\"allow\":[\"*\"]}]");
	assert_int_equal(policy_decide(p, &pay, "db_password", &d), 0);
	assert_true(d.allowed);
	assert_string_equal(d.rule_id, "payment");
	assert_int_equal(d.rule_index, 0);
	/* web skips "payment" (match), is denied by "no-db" before "all". */
	assert_int_equal(policy_decide(p, &web, "db_password", &d), 0);
	assert_false(d.allowed);
	assert_string_equal(d.rule_id, "no-db");
	assert_int_equal(d.rule_index, 1);
	/* payment matched rule 0 but its lists do not name tls.key: passed over. */
	assert_int_equal(policy_decide(p, &pay, "tls.key", &d), 0);
	assert_true(d.allowed);
	assert_string_equal(d.rule_id, "all");
	policy_free(p);

	/* The same rules the other way round: the deny comes first now. */
	p = load("[{\"id\":\"no-db\",\"match\":{\"host\":false},\"deny\":[\"db_*\"]},"
	    "{\"id\":\"payment\",\"match\":{\"container_name\":\"payment-*\"},"
	    "\"allow\":[\"db_*\"]}]");
	assert_false(allowed(p, &pay, "db_password"));
	assert_string_equal(decider(p, &pay, "db_password"), "no-db");
	policy_free(p);
}

static void
test_deny_wins_inside_rule(void **state)
{
	struct caller c = container(IDENTITY_RUNTIME_PODMAN, ID_A, "batch", "");
	struct policy *p;

	(void)state;
	p = load("[{\"id\":\"r\",\"match\":{\"runtime\":\"podman\"},"
	    "\"allow\":[\"*\"],\"deny\":[\"root_*\"]},"
	    "{\"id\":\"later\",\"match\":{\"any\":true},\"allow\":[\"root_*\"]}]");
	assert_true(allowed(p, &c, "api_token"));
	assert_false(allowed(p, &c, "root_ca_key"));
	/* The deny decided: a later allow is never reached. */
	assert_string_equal(decider(p, &c, "root_ca_key"), "r");
	policy_free(p);
}

static void
test_default_deny(void **state)
{
	struct caller c = container(IDENTITY_RUNTIME_DOCKER, ID_A, "web", "nginx");
	struct policy_decision d;
	struct policy *p;

	(void)state;
	p = load("[{\"match\":{\"container_name\":\"payment-*\"},"
	    "\"allow\":[\"*\"]}]");
	assert_int_equal(policy_decide(p, &c, "db_password", &d), 0);
	assert_false(d.allowed);
	assert_string_equal(d.rule_id, POLICY_DEFAULT_DENY_ID);
	assert_int_equal(d.rule_index, -1);
	/* An empty name is never allowed. */
	strcpy(c.container_name, "payment-x");
	assert_false(allowed(p, &c, ""));
	assert_true(allowed(p, &c, "db_password"));
	policy_free(p);
}

static void
test_host_handling(void **state)
{
	struct caller h = host(1000);
	struct caller root = host(0);
	struct caller ctr = container(IDENTITY_RUNTIME_DOCKER, ID_A, "x", "y");
	struct caller svc = host(0);
	struct policy *p;

	(void)state;
	svc.runtime = IDENTITY_RUNTIME_SYSTEMD;
	strcpy(svc.unit, "backup.service");
	strcpy(svc.cgroup, "/system.slice/backup.service");

	/* uid alone: containers running as 1000, never the host user 1000. */
	p = load("[{\"match\":{\"uid\":1000},\"allow\":[\"*\"]}]");
	assert_true(allowed(p, &ctr, "a"));
	assert_false(allowed(p, &h, "a"));
	policy_free(p);

	/* A cgroup glob alone is container-scoped too. */
	p = load("[{\"match\":{\"cgroup\":\"/user.slice/*/*\"},\"allow\":[\"*\"]}]");
	assert_false(allowed(p, &h, "a"));
	policy_free(p);

	p = load("[{\"match\":{\"host\":true,\"uid\":1000},\"allow\":[\"*\"]}]");
	assert_true(allowed(p, &h, "a"));
	assert_false(allowed(p, &root, "a"));
	assert_false(allowed(p, &ctr, "a"));	/* uid 1000, but in a container */
	policy_free(p);

	/* "any" reaches both. */
	p = load("[{\"match\":{\"any\":true,\"uid\":[0,1000]},\"allow\":[\"*\"]}]");
	assert_true(allowed(p, &h, "a"));
	assert_true(allowed(p, &root, "a"));
	assert_true(allowed(p, &ctr, "a"));
	policy_free(p);

	/* A systemd service is a host process; unit and runtime pick it out. */
	p = load("[{\"match\":{\"host\":true,\"unit\":\"backup.service\"},"
	    "\"allow\":[\"s3_*\"]},"
	    "{\"match\":{\"host\":true,\"runtime\":\"host\"},\"allow\":[\"h_*\"]}]");
	assert_true(allowed(p, &svc, "s3_key"));
	assert_false(allowed(p, &root, "s3_key"));
	assert_false(allowed(p, &svc, "h_x"));
	assert_true(allowed(p, &root, "h_x"));
	policy_free(p);

	/* host: true alone is every host process, and no container. */
	p = load("[{\"match\":{\"host\":true},\"allow\":[\"*\"]}]");
	assert_true(allowed(p, &svc, "a"));
	assert_true(allowed(p, &h, "a"));
	assert_false(allowed(p, &ctr, "a"));
	policy_free(p);
}

static void
test_kubepods_pod_level_not_host(void **state)
{
	struct caller c;
	struct policy *p;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.runtime = IDENTITY_RUNTIME_KUBEPODS;
	strcpy(c.pod_uid, POD_U);
	p = load("[{\"match\":{\"host\":true},\"allow\":[\"*\"]},"
	    "{\"match\":{\"pod_uid\":\"1b5a824d-*\"},\"allow\":[\"pod_*\"]}]");
	assert_false(allowed(p, &c, "a"));
	assert_true(allowed(p, &c, "pod_token"));
	policy_free(p);
}

static void
test_matchers(void **state)
{
	struct caller c = container(IDENTITY_RUNTIME_CONTAINERD, ID_A,
	    "shop-payment-api-1", "registry.example.com/shop/payment-api:2.3.1");
	struct caller other = container(IDENTITY_RUNTIME_DOCKER, ID_B,
	    "shop-web-1", "nginx:1.25");
	struct policy *p;

	(void)state;
	add_label(&c, "com.docker.compose.project", "shop");
	add_label(&c, "com.docker.compose.service", "payment-api");
	add_label(&c, "empty", "");
	strcpy(c.pod_uid, POD_U);

	/* container_id: full, a 12-digit prefix, upper case normalised. */
	p = load("[{\"match\":{\"container_id\":\"A8AB54591EFE\"},"
	    "\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &c, "k"));
	assert_false(allowed(p, &other, "k"));
	policy_free(p);
	p = load("[{\"match\":{\"container_id\":[\"" ID_B "\",\"" ID_A "\"]},"
	    "\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &c, "k"));
	assert_true(allowed(p, &other, "k"));
	policy_free(p);
	/* A prefix of the middle of an id is no prefix. */
	p = load("[{\"match\":{\"container_id\":\"ab54591efe0ae52a\"},"
	    "\"allow\":[\"k\"]}]");
	assert_false(allowed(p, &c, "k"));
	policy_free(p);

	/* image: '*' crosses '/', lists are any-of. */
	p = load("[{\"match\":{\"image\":[\"docker.io/*\","
	    "\"registry.example.com/shop/*\"]},\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &c, "k"));
	assert_false(allowed(p, &other, "k"));
	policy_free(p);

	/* Labels: every one must be present and match. */
	p = load("[{\"match\":{\"label\":{\"com.docker.compose.project\":\"shop\","
	    "\"com.docker.compose.service\":[\"web\",\"payment-*\"]}},"
	    "\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &c, "k"));
	policy_free(p);
	p = load("[{\"match\":{\"label\":{\"com.docker.compose.project\":\"shop\","
	    "\"pci.scope\":\"*\"}},\"allow\":[\"k\"]}]");
	assert_false(allowed(p, &c, "k"));	/* pci.scope absent */
	policy_free(p);
	p = load("[{\"match\":{\"label\":{\"empty\":\"\"}},\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &c, "k"));	/* set, to "" */
	policy_free(p);

	/* AND across keys. */
	p = load("[{\"match\":{\"container_name\":\"shop-*\",\"runtime\":"
	    "[\"containerd\",\"cri-o\"],\"pod_uid\":\"" POD_U "\",\"uid\":1000,"
	    "\"gid\":1000},\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &c, "k"));
	assert_false(allowed(p, &other, "k"));	/* docker, no pod */
	c.gid = 0;
	assert_false(allowed(p, &c, "k"));
	c.gid = 1000;
	policy_free(p);

	/* Unknown fields never match, not even "*". */
	p = load("[{\"match\":{\"container_name\":\"*\"},\"allow\":[\"k\"]},"
	    "{\"match\":{\"image\":\"*\"},\"allow\":[\"k\"]},"
	    "{\"match\":{\"pod_uid\":\"*\"},\"allow\":[\"k\"]}]");
	other.container_name[0] = '\0';
	other.image[0] = '\0';
	assert_false(allowed(p, &other, "k"));
	policy_free(p);
}

static void
test_name_globs(void **state)
{
	struct caller c = container(IDENTITY_RUNTIME_DOCKER, ID_A, "x", "y");
	struct policy *p;

	(void)state;
	p = load("[{\"match\":{\"host\":false},"
	    "\"allow\":[\"db_*\",\"stripe/*\",\"tls.[ck][re][ty]\",\"v?\"]}]");
	assert_true(allowed(p, &c, "db_password"));
	assert_true(allowed(p, &c, "db_"));
	assert_false(allowed(p, &c, "db"));
	assert_false(allowed(p, &c, "xdb_password"));
	assert_true(allowed(p, &c, "stripe/api_key"));
	/* '*' stops at '/': no deeper level, no other prefix. */
	assert_false(allowed(p, &c, "stripe/live/api_key"));
	assert_false(allowed(p, &c, "db_x/y"));
	assert_false(allowed(p, &c, "stripe"));
	assert_true(allowed(p, &c, "tls.crt"));
	assert_true(allowed(p, &c, "tls.key"));
	assert_false(allowed(p, &c, "tls.pem"));
	assert_true(allowed(p, &c, "v1"));
	assert_false(allowed(p, &c, "v/"));
	policy_free(p);

	/* An escaped '*' is a literal star. */
	p = load("[{\"match\":{\"host\":false},\"allow\":[\"odd\\\\*\"]}]");
	assert_true(allowed(p, &c, "odd*"));
	assert_false(allowed(p, &c, "oddity"));
	policy_free(p);
}

static void
test_cgroup_globs(void **state)
{
	struct caller c = container(IDENTITY_RUNTIME_DOCKER, ID_A, "x", "y");
	struct caller sub = c;
	struct caller pod = c;
	struct policy *p;

	(void)state;
	snprintf(sub.cgroup, sizeof(sub.cgroup),
	    "/system.slice/docker-%s.scope/child", ID_A);
	snprintf(pod.cgroup, sizeof(pod.cgroup), "/kubepods.slice/"
	    "kubepods-burstable.slice/kubepods-burstable-pod1b5a824d_1f8a.slice/"
	    "cri-containerd-%s.scope", ID_A);

	p = load("[{\"match\":{\"cgroup\":\"/system.slice/docker-*.scope\"},"
	    "\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &c, "k"));
	/* A sub-cgroup the container made is not its scope ... */
	assert_false(allowed(p, &sub, "k"));
	/* ... even one named to end like the glob. */
	snprintf(sub.cgroup, sizeof(sub.cgroup),
	    "/system.slice/docker-%s.scope/fake.scope", ID_A);
	assert_false(allowed(p, &sub, "k"));
	assert_false(allowed(p, &pod, "k"));
	policy_free(p);

	p = load("[{\"match\":{\"cgroup\":\"/kubepods.slice/*/*/cri-containerd-*\"},"
	    "\"allow\":[\"k\"]}]");
	assert_true(allowed(p, &pod, "k"));
	assert_false(allowed(p, &c, "k"));
	policy_free(p);

	/* A path identity left empty (too long) matches no glob. */
	c.cgroup[0] = '\0';
	p = load("[{\"match\":{\"cgroup\":\"*\"},\"allow\":[\"k\"]}]");
	assert_false(allowed(p, &c, "k"));
	policy_free(p);
}

/* ---- the k8s matcher ---------------------------------------------------- */

static struct caller
pod_caller(const char *ns, const char *sa, const char *pod, const char *ctr)
{
	struct caller c = container(IDENTITY_RUNTIME_CONTAINERD, ID_A, "", "");

	snprintf(c.pod_uid, sizeof(c.pod_uid), "%s", POD_U);
	c.k8s.state = IDENTITY_K8S_KNOWN;
	snprintf(c.k8s.namespace, sizeof(c.k8s.namespace), "%s", ns);
	snprintf(c.k8s.service_account, sizeof(c.k8s.service_account), "%s",
	    sa);
	snprintf(c.k8s.pod, sizeof(c.k8s.pod), "%s", pod);
	snprintf(c.k8s.container, sizeof(c.k8s.container), "%s", ctr);
	return c;
}

static void
test_k8s_matcher(void **state)
{
	struct policy *p;
	struct caller c;

	(void)state;
	reject("[{\"match\":{\"k8s\":{}},\"allow\":[\"x\"]}]",
	    "rules[0].match.k8s", "at least one");
	reject("[{\"match\":{\"k8s\":[]},\"allow\":[\"x\"]}]",
	    "rules[0].match.k8s", NULL);
	reject("[{\"match\":{\"k8s\":{\"namespaces\":\"a\"}},\"allow\":[\"x\"]}]",
	    "rules[0].match.k8s.namespaces", "unknown key");
	reject("[{\"match\":{\"k8s\":{\"namespace\":\"\"}},\"allow\":[\"x\"]}]",
	    "rules[0].match.k8s.namespace", NULL);
	reject("[{\"match\":{\"k8s\":{\"label\":{}}},\"allow\":[\"x\"]}]",
	    "rules[0].match.k8s.label", NULL);
	reject("[{\"match\":{\"host\":true,\"k8s\":{\"pod\":\"a\"}},"
	    "\"allow\":[\"x\"]}]", "rules[0].match.host", "never");

	p = load("[{\"id\":\"pay\",\"match\":{\"k8s\":{\"namespace\":\"payments\","
	    "\"service_account\":\"payments-api\"}},\"allow\":[\"db_*\"]},"
	    "{\"id\":\"web\",\"match\":{\"k8s\":{\"namespace\":\"front*\","
	    "\"container\":[\"web\",\"nginx\"],\"label\":{\"app\":\"web\"}}},"
	    "\"allow\":[\"tls\"]},"
	    "{\"id\":\"pods\",\"match\":{\"k8s\":{\"pod\":\"batch-*\"}},"
	    "\"allow\":[\"batch\"]}]");
	assert_int_equal(policy_first_k8s_rule(p), 0);

	c = pod_caller("payments", "payments-api", "api-1", "api");
	assert_string_equal(decider(p, &c, "db_password"), "pay");
	assert_false(allowed(p, &c, "tls"));
	/* Another service account in the same namespace: nothing. */
	c = pod_caller("payments", "default", "api-1", "api");
	assert_false(allowed(p, &c, "db_password"));

	c = pod_caller("frontend", "web", "web-0", "web");
	assert_false(allowed(p, &c, "tls"));	/* the label is missing */
	snprintf(c.k8s.labels[0].key, sizeof(c.k8s.labels[0].key), "app");
	snprintf(c.k8s.labels[0].value, sizeof(c.k8s.labels[0].value), "web");
	c.k8s.n_labels = 1;
	assert_string_equal(decider(p, &c, "tls"), "web");
	/* The engine's labels are not the pod's. */
	c.k8s.n_labels = 0;
	add_label(&c, "app", "web");
	assert_false(allowed(p, &c, "tls"));
	/* Pod level (no container name): a container glob never holds. */
	c = pod_caller("frontend", "web", "web-0", "");
	snprintf(c.k8s.labels[0].key, sizeof(c.k8s.labels[0].key), "app");
	snprintf(c.k8s.labels[0].value, sizeof(c.k8s.labels[0].value), "web");
	c.k8s.n_labels = 1;
	assert_false(allowed(p, &c, "tls"));

	/* Only what the kubelet vouches for. */
	c = pod_caller("payments", "payments-api", "batch-1", "api");
	assert_true(allowed(p, &c, "batch"));
	c.k8s.state = IDENTITY_K8S_NONE;
	assert_false(allowed(p, &c, "batch"));
	assert_false(allowed(p, &c, "db_password"));
	policy_free(p);

	/* An unlisted pod is denied even by a rule that names no k8s key. */
	p = load("[{\"id\":\"all\",\"match\":{\"any\":true},\"allow\":[\"*\"]}]");
	assert_int_equal(policy_first_k8s_rule(p), -1);
	c = pod_caller("", "", "", "");
	c.k8s.state = IDENTITY_K8S_UNLISTED;
	assert_string_equal(decider(p, &c, "x"), POLICY_DEFAULT_DENY_ID);
	c.k8s.state = IDENTITY_K8S_UNREACHABLE;
	assert_string_equal(decider(p, &c, "x"), POLICY_DEFAULT_DENY_ID);
	c.k8s.state = IDENTITY_K8S_NONE;
	assert_string_equal(decider(p, &c, "x"), "all");
	policy_free(p);
}

/* ---- identities the kernel did not confirm ---------------------------- */

static void
test_refused_rootless_unknown(void **state)
{
	struct policy *p;
	struct caller c;

	(void)state;
	p = load("[{\"id\": \"any\", \"match\": {\"any\": true},"
	    " \"allow\": [\"a\"]},"
	    " {\"id\": \"id\", \"match\": {\"container_id\": \"" ID_A "\"},"
	    " \"allow\": [\"b\"]},"
	    " {\"id\": \"owner\", \"match\": {\"container_id\": \"" ID_A "\","
	    " \"owner_uid\": 1000}, \"allow\": [\"c\"]},"
	    " {\"id\": \"unk\", \"match\": {\"runtime\": \"unknown\"},"
	    " \"allow\": [\"d\"]},"
	    " {\"id\": \"cg\", \"match\": {\"cgroup\": \"/lxc.payload.*\"},"
	    " \"allow\": [\"e\"]}]");

	/* Believed: the plain rules hold, the owner's does not (owner 0). */
	c = container(IDENTITY_RUNTIME_PODMAN, ID_A, "", "");
	assert_true(allowed(p, &c, "a"));
	assert_true(allowed(p, &c, "b"));
	assert_false(allowed(p, &c, "c"));

	/* Refused: nothing at all, not even "any". */
	snprintf(c.refused, sizeof(c.refused), "owned by a user at /x");
	assert_false(allowed(p, &c, "a"));
	assert_false(allowed(p, &c, "b"));
	assert_string_equal(decider(p, &c, "a"), POLICY_DEFAULT_DENY_ID);

	/* Rootless: only a rule naming the owner. */
	c = container(IDENTITY_RUNTIME_PODMAN, ID_A, "", "");
	c.rootless = true;
	c.cgroup_owner = 1000;
	assert_false(allowed(p, &c, "a"));
	assert_false(allowed(p, &c, "b"));
	assert_true(allowed(p, &c, "c"));
	c.cgroup_owner = 1001;
	assert_false(allowed(p, &c, "c"));

	/* Unknown: a rule for "unknown" or a cgroup glob, nothing else. */
	c = container(IDENTITY_RUNTIME_UNKNOWN, "", "", "");
	snprintf(c.cgroup, sizeof(c.cgroup), "/lxc.payload.x");
	assert_false(allowed(p, &c, "a"));
	assert_true(allowed(p, &c, "d"));
	assert_true(allowed(p, &c, "e"));
	snprintf(c.cgroup, sizeof(c.cgroup), "/machine.slice/x");
	assert_false(allowed(p, &c, "e"));
	policy_free(p);

	reject("[{\"match\": {\"host\": true, \"runtime\": \"unknown\"},"
	    " \"allow\": [\"a\"]}]", "rules[0].match.host", "never hold");
	reject("[{\"match\": {\"owner_uid\": \"x\"}, \"allow\": [\"a\"]}]",
	    "rules[0].match.owner_uid", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_match_errors),
		cmocka_unit_test(test_parse_never_matches),
		cmocka_unit_test(test_parse_custom_path_and_null_err),
		cmocka_unit_test(test_parse_ok_and_ids),
		cmocka_unit_test(test_empty_policies_deny),
		cmocka_unit_test(test_first_rule_wins),
		cmocka_unit_test(test_deny_wins_inside_rule),
		cmocka_unit_test(test_default_deny),
		cmocka_unit_test(test_host_handling),
		cmocka_unit_test(test_kubepods_pod_level_not_host),
		cmocka_unit_test(test_matchers),
		cmocka_unit_test(test_name_globs),
		cmocka_unit_test(test_cgroup_globs),
		cmocka_unit_test(test_k8s_matcher),
		cmocka_unit_test(test_refused_rootless_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
