/*
 * config_int.h: what the files of the config module share (loading in
 * config.c, the section parsers in config_parse.c). Not an interface.
 */
#ifndef SECRETSFS_CONFIG_INT_H
#define SECRETSFS_CONFIG_INT_H

#include <jansson.h>

#include <secretsfs/cfg.h>
#include <secretsfs/config.h>

/*
 * Fill cfg from the parsed document, section by section: 0, -EINVAL with
 * err's path and message (config.c places it in the text), or -ENOMEM.
 */
int config_parse_root(struct config *cfg, const json_t *root,
    struct cfg_err *err);

/* "metrics" (config_metrics.c): cfg->metrics, or NULL when absent. */
int config_parse_metrics(const json_t *root, struct config *cfg,
    struct cfg_err *err);
void config_metrics_free(struct config_metrics *m);

#endif
