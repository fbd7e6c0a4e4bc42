/* check.h - the C test programs' CHECK: prints the failed condition with its place and makes the
 * calling function (main) return 1. */
#ifndef UMN_TESTS_C_API_CHECK_H
#define UMN_TESTS_C_API_CHECK_H

#include <stdio.h>

#define CHECK(cond)                                                                           \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			return 1;                                                             \
		}                                                                             \
	} while (0)

#endif /* UMN_TESTS_C_API_CHECK_H */
