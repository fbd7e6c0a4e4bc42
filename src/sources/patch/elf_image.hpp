// elf_image.hpp - a read-only view of an ELF file as it is on disk: its sections, its loadable segments
// and the bytes at a virtual address. The patcher decodes the file's bytes, not the live text, so that
// a site another library already patched in memory is still found (and then classified as foreign).
//
// Locking: none; one owner. Lifetime: the file is mapped from open() to the destructor.
// Context: not a signal handler; no malloc (raw mmap of the file), no lock.
// Memory ordering: none.
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>

namespace umn::detail::patch {

struct Section {
  const unsigned char* data = nullptr;  // nullptr: absent (or SHT_NOBITS)
  uint64_t addr = 0;                    // virtual address of data[0]
  uint64_t size = 0;
  uint64_t entsize = 0;
  uint32_t link = 0;                    // sh_link (the string table of a symbol table)
};

class ElfImage {
 public:
  ElfImage() = default;
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;
  ~ElfImage();

  // Maps the file behind fd (not closed). Return: false when it is not a 64-bit x86-64 ELF file.
  bool open(int fd) noexcept;
  // The section called name, or one with data == nullptr.
  Section section(const char* name) const noexcept;
  Section section(unsigned index) const noexcept;
  // The virtual address the file offset maps to (through its PT_LOAD), or 0 when none covers it.
  uint64_t vaddr_of_offset(uint64_t offset) const noexcept;
  // The file bytes at [vaddr, vaddr + length) when one PT_LOAD holds them all, else nullptr.
  const unsigned char* bytes_at(uint64_t vaddr, uint64_t length) const noexcept;
  // Calls fn(vaddr, filesz) for every executable PT_LOAD (the bytes the file holds).
  template <typename Fn>
  void for_each_exec_segment(Fn fn) const noexcept {
    for (unsigned i = 0; i < phnum_; ++i)
      if (phdrs_[i].p_type == PT_LOAD && (phdrs_[i].p_flags & PF_X) != 0) fn(phdrs_[i].p_vaddr, phdrs_[i].p_filesz);
  }

 private:
  bool in_file(uint64_t offset, uint64_t length) const noexcept { return offset <= size_ && length <= size_ - offset; }

  const unsigned char* file_ = nullptr;
  size_t size_ = 0;
  const Elf64_Phdr* phdrs_ = nullptr;
  unsigned phnum_ = 0;
  const Elf64_Shdr* shdrs_ = nullptr;
  unsigned shnum_ = 0;
  const char* shstr_ = nullptr;
  uint64_t shstr_size_ = 0;
};

}  // namespace umn::detail::patch
