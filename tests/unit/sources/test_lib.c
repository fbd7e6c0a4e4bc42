/* test_lib.c - a shared library the tests dlopen and dlclose (the loader's own munmap path). */
int umn_test_lib_answer(void) { return 42; }
