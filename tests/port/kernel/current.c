// SPDX-License-Identifier: MIT
/* current.c - the test's hook to set current->mm for the kernel-style drivers (see drivers.h). */
#include <linux/sched/mm.h>

#include "drivers.h"

void port_set_current_mm(struct mm_struct *mm)
{
	current->mm = mm;
}
