/* Simulated hosts for tests: a sysfs-shaped tree built from a bundled real
 * dump in a private temporary directory. */
#ifndef SIMTREE_H
#define SIMTREE_H

#include <stdbool.h>
#include <stddef.h>

/* tests/data/hosts/NAME: the dump, and NAME's ".sizes" sidecar if there is one. */
char *simtree_dump_path(const char *name);

/* Build the tree; every function assignable when all_assignable.  Aborts the
 * test on failure.  Returns the tree's directory (g_free it). */
char *simtree_build(const char *name, bool all_assignable);
/* The same from a dump anywhere (a test that constructs one). */
char *simtree_build_path(const char *path, bool all_assignable);

/* Conditions no bundled dump shows, made in a built tree: bytes of a
 * function's config file ("0000:06:00.1") replaced; a function that reads
 * all ones (powered off, D3cold: the kernel keeps its sysfs entry and IDs,
 * every config read answers 0xff). */
void simtree_poke(const char *dir, const char *bdf, unsigned offset, const void *bytes,
                  size_t len);
void simtree_all_ones(const char *dir, const char *bdf);
/* The bytes of a function's config file at offset. */
void simtree_peek(const char *dir, const char *bdf, unsigned offset, void *bytes, size_t len);

/* Remove a tree made by simtree_build. */
void simtree_remove(char *dir);

#endif
