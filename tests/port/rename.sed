# rename.sed - the whole source rename of a port from the kernel's notifier API to umn's (docs/porting.md):
#   sed -f rename.sed driver.c > driver_umn.c
s/mmu_/umn_/g
s/MMU_/UMN_/g
s/struct mm_struct/struct umn_mm/g
