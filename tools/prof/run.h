/* run.h - `rcgc-prof run` (run.c). */
#ifndef RCGC_PROF_RUN_H
#define RCGC_PROF_RUN_H
#include <stddef.h>
int prof_cmd_run(int argc, char **argv);
/* Path of librcgc-prof.so into out; 0, or -1 if not found. */
int prof_find_preload(char *out, size_t cap);
#endif
