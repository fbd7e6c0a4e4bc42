// inline_sites.cc - syscall sites outside libc, as a language runtime writes them (the Go runtime's
// two encodings), and a byte pattern of a site hidden inside another instruction. Each function is a
// symbol with a size and an FDE, as compiled code has. Declared in inline_sites.hpp.
asm(R"(
	.text

/* long umn_test_munmap_eax(void *addr, size_t len): mov $SYS_munmap,%eax (b8 imm32); syscall */
	.globl umn_test_munmap_eax
	.type umn_test_munmap_eax, @function
	.p2align 4
umn_test_munmap_eax:
	.cfi_startproc
	mov $11, %eax
	syscall
	ret
	.cfi_endproc
	.size umn_test_munmap_eax, .-umn_test_munmap_eax

/* long umn_test_madvise_rax(void *addr, size_t len, int advice): mov $SYS_madvise,%rax (48 c7 c0
 * imm32, Go's encoding); syscall */
	.globl umn_test_madvise_rax
	.type umn_test_madvise_rax, @function
	.p2align 4
umn_test_madvise_rax:
	.cfi_startproc
	.byte 0x48, 0xc7, 0xc0, 0x1c, 0x00, 0x00, 0x00
	syscall
	ret
	.cfi_endproc
	.size umn_test_madvise_rax, .-umn_test_madvise_rax

/* long umn_test_munmap_rax(void *addr, size_t len): the 7-byte mov with munmap */
	.globl umn_test_munmap_rax
	.type umn_test_munmap_rax, @function
	.p2align 4
umn_test_munmap_rax:
	.cfi_startproc
	.byte 0x48, 0xc7, 0xc0, 0x0b, 0x00, 0x00, 0x00
	syscall
	ret
	.cfi_endproc
	.size umn_test_munmap_rax, .-umn_test_munmap_rax

/* uint64_t umn_test_hidden_pattern(void): movabs $0x00050f0000000bb8,%rax; ret -- its immediate holds
 * "b8 0b 00 00 00 0f 05" (mov $SYS_munmap,%eax; syscall), which is not an instruction here. */
	.globl umn_test_hidden_pattern
	.type umn_test_hidden_pattern, @function
	.p2align 4
umn_test_hidden_pattern:
	.cfi_startproc
	movabs $0x00050f0000000bb8, %rax
	ret
	.cfi_endproc
	.size umn_test_hidden_pattern, .-umn_test_hidden_pattern

	.text
)");
