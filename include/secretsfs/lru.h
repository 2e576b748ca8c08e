/*
 * lru: an intrusive least-recently-used list.
 *
 * The node lives inside the cached object, so moving an entry to the front
 * on every hit costs four pointer writes and no allocation. The list does
 * no locking and owns nothing: the cache that embeds it does both.
 */
#ifndef SECRETSFS_LRU_H
#define SECRETSFS_LRU_H

#include <stddef.h>

struct lru_node {
	struct lru_node	*prev, *next;	/* prev: more recent */
};

struct lru {
	struct lru_node	*head;		/* most recently used */
	struct lru_node	*tail;		/* least recently used */
};

/* The object that embeds node n as its member field; NULL for NULL. */
#define LRU_ENTRY(n, type, field) __extension__ ({			\
	struct lru_node *lru_n_ = (n);					\
	lru_n_ ? (type *)(void *)((char *)lru_n_ - offsetof(type, field)) \
	    : (type *)NULL;						\
})

/* Insert n (not on the list) as the most recent. */
void lru_push(struct lru *l, struct lru_node *n);
/* Take n off the list; a node not on it is left alone. */
void lru_unlink(struct lru *l, struct lru_node *n);
/* Make n, on the list or not, the most recent. */
void lru_touch(struct lru *l, struct lru_node *n);
/* The least recently used node, or NULL. */
struct lru_node *lru_oldest(const struct lru *l);

#endif
