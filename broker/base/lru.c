/*
 * lru: the one LRU list of the daemon (the secret cache, the identity
 * cache and the container-metadata cache all evict through it).
 */
#include <secretsfs/lru.h>

void
lru_unlink(struct lru *l, struct lru_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else if (l->head == n)
		l->head = n->next;
	else
		return;		/* not on the list */
	if (n->next)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NULL;
}

void
lru_push(struct lru *l, struct lru_node *n)
{
	n->prev = NULL;
	n->next = l->head;
	if (l->head)
		l->head->prev = n;
	l->head = n;
	if (!l->tail)
		l->tail = n;
}

void
lru_touch(struct lru *l, struct lru_node *n)
{
	if (l->head == n)
		return;
	lru_unlink(l, n);
	lru_push(l, n);
}

struct lru_node *
lru_oldest(const struct lru *l)
{
	return l->tail;
}
