/*
 * aws_xml: a small XML reader, enough for awsQuery answers (STS):
 * elements, attributes, comments, processing instructions, CDATA, the
 * five named entities and character references. A DOCTYPE is refused
 * outright (no entity definitions, no expansion).
 */
#ifndef SECRETSFS_AWS_XML_H
#define SECRETSFS_AWS_XML_H

#include <stddef.h>

/*
 * Find the element at path (local names, root first) and return its raw
 * content. 0, -ENOENT (not there), -EIO (malformed, or the element has
 * child elements).
 */
int aws_xml_find(const char *xml, size_t len, const char *const *path,
    size_t plen, const char **val, size_t *vlen);

/*
 * The decoded text at path (trimmed, NUL-terminated, secmem: free it
 * with secmem_free), or NULL with *err set: -ENOENT (absent), -EIO
 * (malformed or out of memory).
 */
char *aws_xml_get(const char *xml, size_t len, const char *const *path,
    size_t plen, size_t *outlen, int *err);

#endif
