// elf_image.cc - a read-only view of an ELF file (contract: elf_image.hpp).
#include "sources/patch/elf_image.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cstring>

#include "sources/patch/scratch.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail::patch {

ElfImage::~ElfImage() {
  if (file_ != nullptr) unmap_scratch(const_cast<unsigned char*>(file_), size_);
}

bool ElfImage::open(int fd) noexcept {
  struct stat st;
  if (sys::failed(sys::call(SYS_fstat, fd, reinterpret_cast<long>(&st))) ||
      st.st_size < static_cast<long>(sizeof(Elf64_Ehdr)))
    return false;
  long map = sys::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  if (sys::failed(map)) return false;
  file_ = reinterpret_cast<const unsigned char*>(map);
  size_ = static_cast<size_t>(st.st_size);
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, file_, sizeof(ehdr));
  if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 || ehdr.e_ident[EI_CLASS] != ELFCLASS64 ||
      ehdr.e_machine != EM_X86_64)
    return false;
  if (ehdr.e_phentsize == sizeof(Elf64_Phdr) && in_file(ehdr.e_phoff, uint64_t{ehdr.e_phnum} * sizeof(Elf64_Phdr))) {
    phdrs_ = reinterpret_cast<const Elf64_Phdr*>(file_ + ehdr.e_phoff);
    phnum_ = ehdr.e_phnum;
  }
  if (ehdr.e_shentsize == sizeof(Elf64_Shdr) && in_file(ehdr.e_shoff, uint64_t{ehdr.e_shnum} * sizeof(Elf64_Shdr))) {
    shdrs_ = reinterpret_cast<const Elf64_Shdr*>(file_ + ehdr.e_shoff);
    shnum_ = ehdr.e_shnum;
    if (ehdr.e_shstrndx < shnum_ && in_file(shdrs_[ehdr.e_shstrndx].sh_offset, shdrs_[ehdr.e_shstrndx].sh_size)) {
      shstr_ = reinterpret_cast<const char*>(file_ + shdrs_[ehdr.e_shstrndx].sh_offset);
      shstr_size_ = shdrs_[ehdr.e_shstrndx].sh_size;
    }
  }
  return true;
}

Section ElfImage::section(unsigned index) const noexcept {
  if (index >= shnum_) return {};
  const Elf64_Shdr& shdr = shdrs_[index];
  if (shdr.sh_type == SHT_NOBITS || !in_file(shdr.sh_offset, shdr.sh_size)) return {};
  return {file_ + shdr.sh_offset, shdr.sh_addr, shdr.sh_size, shdr.sh_entsize, shdr.sh_link};
}

Section ElfImage::section(const char* name) const noexcept {
  const size_t length = std::strlen(name);
  for (unsigned i = 0; shstr_ != nullptr && i < shnum_; ++i) {
    const uint64_t at = shdrs_[i].sh_name;
    if (at + length < shstr_size_ && std::memcmp(shstr_ + at, name, length + 1) == 0) return section(i);
  }
  return {};
}

uint64_t ElfImage::vaddr_of_offset(uint64_t offset) const noexcept {
  for (unsigned i = 0; i < phnum_; ++i) {
    const Elf64_Phdr& p = phdrs_[i];
    if (p.p_type == PT_LOAD && offset >= p.p_offset && offset - p.p_offset < p.p_filesz)
      return p.p_vaddr + (offset - p.p_offset);
  }
  return 0;
}

const unsigned char* ElfImage::bytes_at(uint64_t vaddr, uint64_t length) const noexcept {
  for (unsigned i = 0; i < phnum_; ++i) {
    const Elf64_Phdr& p = phdrs_[i];
    if (p.p_type != PT_LOAD || vaddr < p.p_vaddr || vaddr - p.p_vaddr > p.p_filesz ||
        length > p.p_filesz - (vaddr - p.p_vaddr))
      continue;
    const uint64_t offset = p.p_offset + (vaddr - p.p_vaddr);
    return in_file(offset, length) ? file_ + offset : nullptr;
  }
  return nullptr;
}

}  // namespace umn::detail::patch
