/*
 * secretsfs: the command line. Its sub-commands are one table (cmds),
 * which drives dispatch, --help and CMD --help; `mount` hands the loaded
 * config to the daemon (daemon.h).
 *
 * Before anything is parsed, the process is hardened and jansson routed
 * through the wiping allocator.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <secretsfs/auditlog.h>
#include <secretsfs/cfg.h>
#include <secretsfs/checkconf.h>
#include <secretsfs/control.h>
#include <secretsfs/engine.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/identity.h>
#include <secretsfs/inspect.h>
#include <secretsfs/policy.h>
#include <secretsfs/repair.h>
#include <secretsfs/config.h>
#include <secretsfs/daemon.h>
#include <secretsfs/fs.h>
#include <secretsfs/http.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

#include "explain_k8s.h"

#ifndef SECRETSFS_VERSION
#define SECRETSFS_VERSION "unknown"
#endif

static void usage(FILE *);
static int help(const char *);

static int
load_config(const char *file, struct config **cfg)
{
	struct cfg_err err;
	char msg[1024];
	int r;

	if ((r = config_load(file, cfg, &err)) < 0) {
		cfg_err_format(&err, file, msg, sizeof(msg));
		log_warnx("%s", msg);
	}
	return r;
}

/*
 * The document, then every check mount makes short of mounting
 * (checkconf.h); --document stops after the first, for a config meant for
 * another host.
 */
static int
cmd_check_config(int argc, char **argv)
{
	struct checkconf_result res = { 0, 0 };
	bool document = false;
	struct config *cfg;

	if (argc == 3 && strcmp(argv[1], "--document") == 0) {
		document = true;
		argv++;
		argc--;
	}
	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (load_config(argv[1], &cfg) < 0)
		return 1;
	if (!document)
		checkconf_run(cfg, stderr, &res);
	if (res.errors == 0)
		printf("%s: ok: %zu backend%s, %zu secret%s, mount %s%s\n",
		    argv[1], cfg->n_backends, cfg->n_backends == 1 ? "" : "s",
		    cfg->n_secrets, cfg->n_secrets == 1 ? "" : "s",
		    cfg->mountpoint, res.warnings ? " (with warnings)" : "");
	else
		fprintf(stderr, "%s: %u error%s: mount would refuse to "
		    "start\n", argv[1], res.errors, res.errors == 1 ? "" : "s");
	config_free(cfg);
	return res.errors ? 1 : 0;
}

/* The daemon's life is daemon.c's; fs.c serves its requests. */
static int
cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "foreground",	no_argument,		NULL, 'f' },
		{ "debug",	no_argument,		NULL, 'd' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_options opt = { 0 };
	const char *file = NULL;
	struct config *cfg;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:fdh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'f':
			opt.foreground = true;
			break;
		case 'd':
			opt.debug = true;
			break;
		case 'h':
			return help("mount");
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!file || argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	log_init("secretsfs", opt.debug, !opt.foreground);
	if (load_config(file, &cfg) < 0)
		return 1;
	opt.mountpoint = argc - optind == 1 ? argv[optind] : cfg->mountpoint;
	return daemon_main(cfg, &opt, &fs_frontend);
}

/* The fs uid/gid of pid, as the kernel hands them to FUSE. */
static int
proc_ids(pid_t pid, uid_t *uid, gid_t *gid)
{
	char path[64], line[256];
	unsigned r, e, s, f;
	int found = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(fp = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "Uid: %u %u %u %u", &r, &e, &s, &f) == 4) {
			*uid = f;
			found++;
		} else if (sscanf(line, "Gid: %u %u %u %u", &r, &e, &s, &f) == 4) {
			*gid = f;
			found++;
		}
	}
	fclose(fp);
	return found == 2 ? 0 : -EIO;
}

/* "12x", "0", "-3" and a number past pid_t are not process ids. */
static int
parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v <= 0 || v > INT_MAX) {
		log_warnx("--pid %s: not a process id", s);
		return -EINVAL;
	}
	*out = (pid_t)v;
	return 0;
}

/*
 * The engine client of explain and repair. Its answers (which carry the
 * container's environment) are received into locked memory, as in the
 * daemon: this process maps an arena for them first.
 */
static struct engine *
cli_engine(const char *socket)
{
	struct engine *e;
	char why[256];
	int r;

	/* explain may have mapped it for the kubelet's answers already. */
	if ((r = secmem_init(2 * ENGINE_BODY_MAX, why, sizeof(why))) < 0 &&
	    r != -EALREADY) {
		log_warnx("%s", why);
		return NULL;
	}
	if (!(e = engine_new(socket)))
		log_warnx("runtime.socket: %s", strerror(errno));
	return e;
}

static int
cmd_explain(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "pid",	required_argument,	NULL, 'p' },
		{ "container",	required_argument,	NULL, 'n' },
		{ "pod",	required_argument,	NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *container = NULL, *pod = NULL;
	struct engine *engine = NULL;
	struct kubelet *kubelet = NULL;
	struct config *cfg;
	struct caller c;
	pid_t pid = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	int ch, r, rc = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'p':
			if (parse_pid(optarg, &pid) < 0)
				return 2;
			break;
		case 'n':
			container = optarg;
			break;
		case 'P':
			pod = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* With --pod, --container names a container of that pod. */
	if (!file || optind != argc || (pid > 0) + (container && !pod) +
	    (pod != NULL) != 1) {
		usage(stderr);
		return 2;
	}
	if (load_config(file, &cfg) < 0)
		return 1;
	if (cfg->kubelet && !(kubelet = explain_k8s_client(cfg)))
		goto out;
	if (cfg->runtime_socket && !(engine = cli_engine(cfg->runtime_socket)))
		goto out;
	if (pod) {
		if (!kubelet) {
			log_warnx("--pod needs \"runtime\": {\"kubelet\": ...} "
			    "in the config to find the pod");
			goto out;
		}
		if (explain_k8s_pod_pid(kubelet, pod, container, &pid) < 0)
			goto out;
	} else if (container) {
		if (!engine) {
			log_warnx("--container needs \"runtime\": {\"socket\": ...} "
			    "in the config to find the container");
			goto out;
		}
		if ((r = engine_container_pid(engine, container, &pid)) < 0) {
			log_warnx("container %s: %s", container, strerror(-r));
			goto out;
		}
	}
	if ((r = proc_ids(pid, &uid, &gid)) < 0 ||
	    (r = identity_read_trusted(NULL, &(struct identity_trust){
	    .rootless = cfg->runtime_rootless }, pid, uid, gid, &c)) < 0) {
		log_warnx("process %d: %s", (int)pid, strerror(-r));
		goto out;
	}
	if (engine && c.container_id[0] && (r = engine_enrich(engine, &c)) < 0)
		log_warnx("container %.12s: no runtime metadata (%s); rules on "
		    "name, image and labels cannot match", c.container_id,
		    strerror(-r));
	if (engine && identity_verify_engine(NULL, &c, true) < 0)
		goto out;
	printf("process %d (%s) uid %u gid %u\n", (int)c.pid, c.comm,
	    (unsigned)c.uid, (unsigned)c.gid);
	printf("  runtime %s", identity_runtime_name(c.runtime));
	if (c.container_id[0])
		printf(", container %.12s", c.container_id);
	if (c.container_name[0])
		printf(" \"%s\"", c.container_name);
	if (c.image[0])
		printf(", image %s", c.image);
	if (c.pod_uid[0])
		printf(", pod %s", c.pod_uid);
	if (c.rootless)
		printf(", rootless, owner uid %u", (unsigned)c.cgroup_owner);
	printf("\n  cgroup %s\n", c.cgroup[0] ? c.cgroup : "(unknown)");
	if (c.refused[0])
		printf("  identity refused: %s\n", c.refused);
	for (size_t i = 0; i < c.n_labels; i++)
		printf("  label %s=%s\n", c.labels[i].key, c.labels[i].value);
	if (kubelet)
		explain_k8s_show(kubelet, &c);
	/* The mode and the mount have their say too (inspect.h). */
	inspect_mount_view(stdout, pid, cfg->mountpoint);
	inspect_table(stdout, cfg, &c, pid);
	rc = 0;
out:
	kubelet_free(kubelet);
	engine_free(engine);
	config_free(cfg);
	return rc;
}

/* A seq given on the command line: 1 or more. */
static int
parse_seq(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * Exit 0: the chain is intact from its start to a confirmed end; 1: it
 * was tampered with (or does not match what was asserted); 2: usage, an
 * unreadable file or key; 3: intact, but nothing confirms its end.
 */
static int
cmd_audit_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key",	required_argument,	NULL, 'k' },
		{ "config",	required_argument,	NULL, 'c' },
		{ "from",	required_argument,	NULL, 'F' },
		{ "to",		required_argument,	NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct auditlog_opts opts = { 0 };
	const char *keyfile = NULL, *file = NULL;
	struct config *cfg = NULL;
	char why[512], sock[256], mac[AUDIT_MAC_HEX + 1];
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "k:c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			keyfile = optarg;
			break;
		case 'c':
			file = optarg;
			break;
		case 'F':
		case 'T':
			if (parse_seq(optarg, ch == 'F' ? &opts.from :
			    &opts.to) < 0) {
				log_warnx("--%s %s: not a seq (1 or more)",
				    ch == 'F' ? "from" : "to", optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if ((keyfile != NULL) == (file != NULL) || optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (opts.to != 0 && opts.to < (opts.from ? opts.from : 1)) {
		log_warnx("--to %llu is before the chain's start",
		    (unsigned long long)opts.to);
		return 2;
	}
	if (file) {
		if (load_config(file, &cfg) < 0)
			return 2;
		if (!cfg->audit) {
			log_warnx("%s has no \"audit\" section", file);
			config_free(cfg);
			return 2;
		}
		keyfile = cfg->audit->key_file;
	}
	/* The MAC key is read into locked memory. */
	if (secmem_init(1u << 20, why, sizeof(why)) < 0) {
		log_warnx("%s", why);
		config_free(cfg);
		return 2;
	}
	/*
	 * The running daemon's last record, asked before a byte of the
	 * files is read: whatever it writes meanwhile only adds to them.
	 */
	if (cfg && control_socket_path(cfg->control_socket, cfg->mountpoint,
	    sock, sizeof(sock)) == 0) {
		if (control_audit_head(sock, &opts.head_seq, mac, sizeof(mac),
		    why, sizeof(why)) == 0) {
			opts.head_mac = mac;
			fprintf(stderr, "secretsfs: audit verify: the daemon's "
			    "last record is seq %llu\n",
			    (unsigned long long)opts.head_seq);
		} else
			fprintf(stderr, "secretsfs: audit verify: %s; the end "
			    "of the trail is judged from the files alone\n", why);
	}
	r = auditlog_verify_files(keyfile, argv + optind, argc - optind, &opts,
	    stdout);
	config_free(cfg);
	if (r < 0) {
		log_warnx("audit verify: %s", strerror(-r));
		return 2;
	}
	return r;
}

static int
cmd_audit_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json",	no_argument,		NULL, 'j' },
		{ "secret",	required_argument,	NULL, 's' },
		{ "container",	required_argument,	NULL, 'n' },
		{ "since",	required_argument,	NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct auditlog_filter f = { 0 };
	bool json = false;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 's':
			f.secret = optarg;
			break;
		case 'n':
			f.container = optarg;
			break;
		case 't':
			f.since = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if ((r = auditlog_show(argv + optind, argc - optind, &f, json,
	    stdout)) < 0) {
		log_warnx("audit show: %s", r == -EINVAL ? "bad --since value" :
		    strerror(-r));
		return 1;
	}
	return 0;
}

/*
 * The scan the daemon runs at start, on demand, against the running
 * daemon's live mount. This process is single-threaded; repair forks per
 * mount anyway.
 */
static int
cmd_repair(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "pid",	required_argument,	NULL, 'p' },
		{ "container",	required_argument,	NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *mp, **names;
	struct engine *engine = NULL;
	struct repair_stats st;
	struct repair *rp = NULL;
	struct config *cfg;
	size_t nnames = 0, npids = 0;
	pid_t *pids, pid;
	int ch, r, rc = 1;

	names = calloc((size_t)argc, sizeof(*names));
	pids = calloc((size_t)argc, sizeof(*pids));
	if (!names || !pids) {
		log_warnx("out of memory");
		goto out_free;
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'p':
			if (parse_pid(optarg, &pid) < 0) {
				rc = 2;
				goto out_free;
			}
			pids[npids++] = pid;
			break;
		case 'n':
			names[nnames++] = optarg;
			break;
		default:
			usage(stderr);
			rc = 2;
			goto out_free;
		}
	}
	if (!file || argc - optind > 1) {
		usage(stderr);
		rc = 2;
		goto out_free;
	}
	if (load_config(file, &cfg) < 0)
		goto out_free;
	mp = argc - optind == 1 ? argv[optind] : cfg->mountpoint;
	if (nnames && !cfg->runtime_socket) {
		log_warnx("--container needs \"runtime\": {\"socket\": ...} "
		    "in the config to find the container");
		goto out;
	}
	if (nnames && !(engine = cli_engine(cfg->runtime_socket)))
		goto out;
	for (size_t i = 0; i < nnames; i++) {
		if ((r = engine_container_pid(engine, names[i], &pid)) < 0) {
			log_warnx("container %s: %s", names[i], strerror(-r));
			goto out;
		}
		pids[npids++] = pid;
	}
	if (!(rp = repair_new(mp))) {
		log_warn("%s", mp);
		goto out;
	}
	for (size_t i = 0; i < npids; i++)
		if ((r = repair_add_pid(rp, pids[i])) < 0) {
			log_warnx("process %d: %s", (int)pids[i], strerror(-r));
			goto out;
		}
	if ((r = repair_run(rp, NULL, NULL, &st)) == -ENOTCONN) {
		log_warnx("%s is not served by a running secretsfs: start the "
		    "daemon first", mp);
		goto out;
	} else if (r < 0) {
		log_warnx("repair: %s", strerror(-r));
		goto out;
	}
	printf("%s: repaired %u of %u dead mount%s (%u mount namespaces "
	    "scanned)\n", mp, st.repaired, st.found, st.found == 1 ? "" : "s",
	    st.namespaces);
	if (st.foreign)
		printf("%s: %u dead secretsfs mount%s not known to be binds of "
		    "this mount left alone (vouch with --pid or --container)\n",
		    mp, st.foreign, st.foreign == 1 ? "" : "s");
	rc = st.failed ? 1 : 0;
out:
	repair_free(rp);
	engine_free(engine);
	config_free(cfg);
out_free:
	free(names);
	free(pids);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The sub-commands: one table drives dispatch, --help and CMD --help.  */

struct cmd {
	const char	*name;		/* one word, or two ("audit verify") */
	int		(*run)(int, char **);	/* argv[0]: the last word */
	const char	*usage;		/* the arguments; "\n" wraps a line */
	const char	*help;		/* "\n" between lines */
	const char	*options;	/* printed whole, or NULL */
	bool		 control;	/* talks to the control socket */
};

static const struct cmd cmds[] = {
	{ "mount", cmd_mount, "-c CONFIG [-f] [-d] [MOUNTPOINT]",
	    "mount the filesystem and serve it until SIGTERM or SIGINT\n"
	    "(MOUNTPOINT defaults to mount.path in the config)",
	    "  -c, --config FILE   the configuration (JSON, mode 0600 or "
	    "stricter)\n"
	    "  -f, --foreground    stay in the foreground and log to stderr\n"
	    "  -d, --debug         debug logging; with -f also libfuse's "
	    "request trace\n", false },
	{ "check-config", cmd_check_config, "[--document] CONFIG",
	    "validate CONFIG and print what it declares; exit 1 on error:\n"
	    "the files mount reads and their modes (the fetcher's as\n"
	    "privsep.user), the mountpoint; warns about rules that can\n"
	    "never match (--document: the document alone)",
	    NULL, false },
	{ "explain", cmd_explain,
	    "-c CONFIG (--pid PID | --container NAME |\n"
	    "--pod NAMESPACE/NAME [--container NAME])",
	    "which secrets a process (or a container's main process,\n"
	    "or a pod's, found through the kubelet) would see under\n"
	    "CONFIG's rules, and the rule deciding each",
	    NULL, false },
	{ "audit verify", cmd_audit_verify,
	    "(-k KEYFILE | -c CONFIG) [--from SEQ]\n[--to SEQ] FILE...",
	    "check the MAC chain of audit files (rotated ones too, any\n"
	    "order); exit 1 at the first record edited, removed,\n"
	    "inserted or reordered, naming its file and line. The\n"
	    "chain must start at seq 1, or at --from SEQ (older files\n"
	    "deleted); its end is confirmed by the running daemon's\n"
	    "last record (with -c), by --to SEQ, or by a final stop\n"
	    "record: else exit 3, end unconfirmed", NULL, false },
	{ "audit show", cmd_audit_show,
	    "[--json] [--secret GLOB] [--container NAME]\n"
	    "[--since TIME] FILE...",
	    "print audit records as a table (--json: as they are),\n"
	    "filtered by secret, container (name or id prefix) and\n"
	    "time (RFC 3339, or a duration such as 1h meaning 'since\n"
	    "an hour ago')", NULL, false },
	{ "repair", cmd_repair,
	    "-c CONFIG [--pid PID]... [--container NAME]...\n[MOUNTPOINT]",
	    "give containers whose bind of the mount died with an\n"
	    "earlier daemon (ENOTCONN) the running daemon's mount,\n"
	    "without restarting them; --pid/--container vouch for the\n"
	    "dead mounts of a container that no record ties to us",
	    NULL, false },
	{ "status", control_main, "[-c CONFIG | -s SOCKET] [--json]",
	    "ask the running daemon: backends, each secret's version,\n"
	    "age and staleness, and who has not reopened it since it\n"
	    "changed (--json for tools)", NULL, true },
	{ "metrics", control_main, "[-c CONFIG | -s SOCKET]",
	    "the daemon's counters, in the Prometheus text format",
	    NULL, true },
	{ "health", control_main, "[-c CONFIG | -s SOCKET]",
	    "exit 0 when mounted and every backend answers or has\n"
	    "failed for less than cache.max_stale (liveness probes);\n"
	    "1 unhealthy, 2 degraded (a backend has never answered)",
	    NULL, true },
	{ "flush", control_main, "[-c CONFIG | -s SOCKET] [NAME]",
	    "forget cached values (of NAME, or all): the next read\n"
	    "fetches again", NULL, true },
	{ "refresh", control_main, "[-c CONFIG | -s SOCKET] NAME",
	    "fetch NAME from its backend now", NULL, true },
};

#define NCMDS		(sizeof(cmds) / sizeof(cmds[0]))
#define HELP_COL	16	/* where the help column starts */
#define USAGE_COL	7	/* strlen("usage: ") */

/* text, its lines after the first indented by indent columns. */
static void
put_lines(FILE *f, const char *text, int indent)
{
	const char *nl;

	while ((nl = strchr(text, '\n'))) {
		fprintf(f, "%.*s\n%*s", (int)(nl - text), text, indent, "");
		text = nl + 1;
	}
	fprintf(f, "%s\n", text);
}

/*
 * The synopsis of cmds[from, to): "usage: " on the first line printed.
 * Neighbours with the same arguments share a line ("metrics | health").
 */
static void
put_usage(FILE *f, size_t from, size_t to)
{
	char names[128];
	size_t i, j;
	int n;

	for (i = from; i < to; i = j) {
		n = snprintf(names, sizeof(names), "%s", cmds[i].name);
		for (j = i + 1; j < to && strcmp(cmds[j].usage,
		    cmds[i].usage) == 0; j++)
			n += snprintf(names + n, sizeof(names) - (size_t)n,
			    " | %s", cmds[j].name);
		fprintf(f, "%-*ssecretsfs %s ", USAGE_COL, i == from ?
		    "usage:" : "", names);
		put_lines(f, cmds[i].usage, USAGE_COL + 10 + n + 1);
	}
}

/* The "commands:" rows of cmds[from, to). */
static void
put_help(FILE *f, size_t from, size_t to, bool overview)
{
	for (size_t i = from; i < to; i++) {
		fprintf(f, "  %-*s", HELP_COL - 2, cmds[i].name);
		put_lines(f, cmds[i].help, HELP_COL);
		if (!cmds[i].control)
			continue;
		if (!overview)
			fprintf(f, "%*s(it talks to the control socket: -s SOCKET, "
			    "or the one\n%*sCONFIG names; default "
			    CONTROL_DEFAULT_SOCKET ")\n", HELP_COL, "",
			    HELP_COL, "");
		else if (i + 1 == to || !cmds[i + 1].control)
			fprintf(f, "%*s(these five talk to the control socket: "
			    "-s SOCKET, or\n%*sthe one CONFIG names; default "
			    CONTROL_DEFAULT_SOCKET ")\n", HELP_COL, "",
			    HELP_COL, "");
	}
}

static void
usage(FILE *f)
{
	put_usage(f, 0, NCMDS);
	fprintf(f, "%*ssecretsfs --version | --help\n"
	    "\n"
	    "Serve secrets from Vault, AWS Secrets Manager or a local "
	    "directory as a\n"
	    "read-only FUSE filesystem, from locked memory.\n"
	    "\n"
	    "commands:\n", USAGE_COL, "");
	put_help(f, 0, NCMDS, true);
	for (size_t i = 0; i < NCMDS; i++)
		if (cmds[i].options)
			fprintf(f, "\n%s options:\n%s", cmds[i].name,
			    cmds[i].options);
	fprintf(f, "\nThe configuration is documented in conf/README.md.\n");
}

/* word is the first word of cmds[i]'s name; *len: that word's length. */
static bool
first_word_is(size_t i, const char *word, size_t *len)
{
	*len = strcspn(cmds[i].name, " ");
	return strlen(word) == *len && strncmp(cmds[i].name, word, *len) == 0;
}

/* "unknown command", with the command it is nearest to. */
static void
unknown_command(const char *name)
{
	const char *cands[NCMDS], *near;
	char words[NCMDS][32];
	size_t len;

	for (size_t i = 0; i < NCMDS; i++) {
		len = strcspn(cmds[i].name, " ");
		snprintf(words[i], sizeof(words[i]), "%.*s", (int)len,
		    cmds[i].name);
		cands[i] = words[i];
	}
	if ((near = cfg_nearest(name, cands, NCMDS)))
		fprintf(stderr, "secretsfs: unknown command \"%s\" (did you "
		    "mean \"%s\"?)\n\n", name, near);
	else
		fprintf(stderr, "secretsfs: unknown command \"%s\"\n\n", name);
}

/*
 * `secretsfs CMD --help`: the usage and help of CMD, or of every command
 * CMD begins ("audit"), on stdout. 2 for a command we do not have.
 */
static int
help(const char *name)
{
	size_t from, to, len;
	const char *sp = strchr(name, ' ');
	char word[32];

	snprintf(word, sizeof(word), "%.*s", sp ? (int)(sp - name) :
	    (int)strlen(name), name);
	for (from = 0; from < NCMDS && !(first_word_is(from, word, &len) &&
	    (!sp || strcmp(cmds[from].name, name) == 0)); from++)
		;
	if (from == NCMDS) {
		unknown_command(name);
		usage(stderr);
		return 2;
	}
	for (to = from + 1; !sp && to < NCMDS && first_word_is(to, word,
	    &len); to++)
		;
	put_usage(stdout, from, to);
	printf("\n");
	put_help(stdout, from, to, false);
	for (size_t i = from; i < to; i++)
		if (cmds[i].options)
			printf("\noptions:\n%s", cmds[i].options);
	return 0;
}

static bool
is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/*
 * The entry argv names, with *words the number of argv's words it took;
 * NULL when none does (*words then says whether the first word is known).
 */
static const struct cmd *
find(int argc, char **argv, int *words)
{
	const char *sub;
	size_t i, len;

	*words = 0;
	for (i = 0; i < NCMDS; i++) {
		if (!first_word_is(i, argv[1], &len))
			continue;
		*words = 1;
		if (!(sub = strchr(cmds[i].name, ' ')))
			return &cmds[i];
		if (argc > 2 && strcmp(sub + 1, argv[2]) == 0) {
			*words = 2;
			return &cmds[i];
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	const struct cmd *c;
	char name[64];
	int r, words;

	log_init("secretsfs", false, false);
	/* Before anything can hold a secret: no core dumps, no ptrace. */
	if ((r = secmem_harden_process()) < 0) {
		errno = -r;
		fatal("cannot make the process non-dumpable");
	}
	secmem_install_json_allocator();
	/* libcurl's (and OpenSSL's) buffers wiped when freed. */
	if (http_global_init() < 0)
		fatalx("cannot initialise libcurl");

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("secretsfs %s\n", SECRETSFS_VERSION);
		return 0;
	}
	if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		/* help CMD [SUB], as CMD [SUB] --help. */
		snprintf(name, sizeof(name), "%s%s%s", argv[2],
		    argc > 3 ? " " : "", argc > 3 ? argv[3] : "");
		return help(name);
	}
	c = find(argc, argv, &words);
	if (words == 0) {
		unknown_command(argv[1]);
		usage(stderr);
		return 2;
	}
	if (argc > 1 + words && is_help(argv[1 + words]))
		return help(c ? c->name : argv[1]);
	if (!c) {
		usage(stderr);
		return 2;
	}
	return c->run(argc - words, argv + words);
}
