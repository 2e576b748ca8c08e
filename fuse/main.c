/*
 * secretsfs: the command line and the daemon's start-up sequence.
 *
 * Order matters: harden the process and route jansson through the wiping
 * allocator before anything is parsed; read the config (its size decides
 * the arena); lock the arena; open the backends; then mount.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <secretsfs/broker.h>
#include <secretsfs/config.h>
#include <secretsfs/fs.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

#ifndef SECRETSFS_VERSION
#define SECRETSFS_VERSION "unknown"
#endif

static void
usage(FILE *f)
{
	fprintf(f,
"usage: secretsfs mount -c CONFIG [-f] [-d] [MOUNTPOINT]\n"
"       secretsfs check-config CONFIG\n"
"       secretsfs --version | --help\n"
"\n"
"Serve secrets from Vault, AWS Secrets Manager or a local directory as a\n"
"read-only FUSE filesystem, from locked memory.\n"
"\n"
"commands:\n"
"  mount         mount the filesystem and serve it until SIGTERM or SIGINT\n"
"                (MOUNTPOINT defaults to mount.path in the config)\n"
"  check-config  validate CONFIG and print what it declares; exit 1 on error\n"
"\n"
"mount options:\n"
"  -c, --config FILE   the configuration (JSON, mode 0600 or stricter)\n"
"  -f, --foreground    stay in the foreground and log to stderr\n"
"  -d, --debug         debug logging; with -f also libfuse's request trace\n"
"\n"
"The configuration is documented in conf/README.md.\n");
}

static int
load_config(const char *file, struct config **cfg)
{
	struct config_err err;
	char msg[1024];
	int r;

	if ((r = config_load(file, cfg, &err)) < 0) {
		config_err_format(&err, file, msg, sizeof(msg));
		log_warnx("%s", msg);
	}
	return r;
}

static int
cmd_check_config(int argc, char **argv)
{
	struct config *cfg;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (load_config(argv[1], &cfg) < 0)
		return 1;
	printf("%s: ok: %zu backend%s, %zu secret%s, mount %s\n", argv[1],
	    cfg->n_backends, cfg->n_backends == 1 ? "" : "s", cfg->n_secrets,
	    cfg->n_secrets == 1 ? "" : "s", cfg->mountpoint);
	config_free(cfg);
	return 0;
}

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
	struct fs_options opt = { 0 };
	const char *file = NULL;
	struct broker *b;
	struct config *cfg;
	char why[512];
	int ch, r;

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
			usage(stdout);
			return 0;
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
	opt.allow_other = cfg->allow_other;
	/* libfuse's trace prints request data; keep it to the foreground. */
	opt.debug = opt.debug && opt.foreground;

	if ((r = secmem_init(cfg->locked_bytes, why, sizeof(why))) < 0) {
		log_warnx("%s", why);
		config_free(cfg);
		return 1;
	}
	log_info("locked %zu bytes for secrets (%s)", secmem_locked_bytes(),
	    secmem_backing());
	if ((r = broker_new(cfg, &b, why, sizeof(why))) < 0) {
		log_warnx("%s", why);
		return 1;
	}
	r = fs_run(b, &opt);
	broker_free(b);
	secmem_shutdown();
	return r < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	int r;

	log_init("secretsfs", false, false);
	/* Before anything can hold a secret: no core dumps, no ptrace. */
	if ((r = secmem_harden_process()) < 0) {
		errno = -r;
		fatal("cannot make the process non-dumpable");
	}
	secmem_install_json_allocator();

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("secretsfs %s\n", SECRETSFS_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "mount") == 0)
		return cmd_mount(argc - 1, argv + 1);
	if (strcmp(argv[1], "check-config") == 0)
		return cmd_check_config(argc - 1, argv + 1);
	fprintf(stderr, "secretsfs: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
